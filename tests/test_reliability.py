"""Fault injection: nothing a user does or the machine does to a run loses it, and every expected
failure ends in one line naming the file or option.

Covers: reusing a run folder, stale temporaries of a killed write, damaged checkpoints (with fallback),
failed checkpoint writes (injected for every file, and a real full tmpfs where mounting is allowed),
kill -9 at random points then an exact resume, decompression-bomb images, list files as people write
them, and every bad option of the CLI.
"""
import errno
import json
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from mxnet.base import MXNetError

from tinyvideo_mx import checkpoint, run_folder
from tinyvideo_mx.cli import main
from tinyvideo_mx.data.image_input import MAX_PIXELS
from tinyvideo_mx.data.listfile import ListFileError, read_labelled_list, read_list
from tinyvideo_mx.data.strips import StripError, decode_strip, encode_strip
from tinyvideo_mx.errors import FileProblem, SettingError, TinyVideoError
from tinyvideo_mx.training import GanTraining

from support.helpers import random_frames, tiny_config

TINY = ["--preset", "tiny", "--quiet", "--sample-every", "0"]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def train_tiny(run, iterations=2, *extra):
    result = invoke("train", *TINY, "--out", run, "--iterations", iterations, "--checkpoint-every", 1, *extra)
    assert result.exit_code == 0, result.output
    return result


def params_bytes(checkpoint_dir):
    return {name: open(os.path.join(checkpoint_dir, name), "rb").read() for name in ("G.params", "D.params")}


# -- 1. A new run never destroys or hides another ----------------------------------------------------
def test_a_second_run_into_the_same_folder_is_refused_with_what_to_do(tmp_path):
    run = tmp_path / "run"
    train_tiny(run)
    before = sorted(os.listdir(run))
    result = invoke("train", *TINY, "--out", run, "--iterations", 1)
    assert result.exit_code == 1
    assert re.fullmatch(
        rf"Error: --out {re.escape(str(run))} already holds a run \(2 checkpoint\(s\), newest ckpt-00000002\): "
        rf"continue it with --resume {re.escape(str(run))}, choose another --out, or add --overwrite to move it "
        rf"aside to {re.escape(str(run))}\.old-\d{{8}}-\d{{6}}\n", result.output), result.output
    assert sorted(os.listdir(run)) == before


def test_overwrite_moves_the_earlier_run_aside_whole(tmp_path):
    run = tmp_path / "run"
    train_tiny(run)
    old = params_bytes(run / "ckpt-00000002")
    train_tiny(run, 1, "--overwrite")
    (archive,) = [p for p in tmp_path.iterdir() if p.name.startswith("run.old-")]
    assert params_bytes(archive / "ckpt-00000002") == old        # the earlier run, untouched
    assert sorted(n for n in os.listdir(run) if n.startswith("ckpt-")) == ["ckpt-00000001"]
    lines = [json.loads(line) for line in open(run / "metrics.jsonl")]
    assert [line["iteration"] for line in lines] == [1]          # no mixing of the two runs' metrics


def test_pruning_touches_only_the_runs_own_checkpoints(tmp_path):
    for name, run_id in (("ckpt-00000001", "other"), ("ckpt-00000002", "mine"), ("ckpt-00000003", "mine"),
                         ("ckpt-00000004", "mine"), ("ckpt-00000005", None)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "meta.json").write_text(json.dumps({"run_id": run_id}))
    (tmp_path / "ckpt-00000006").mkdir()                             # unreadable metadata: never pruned
    checkpoint.prune(str(tmp_path), keep=1, run_id="mine")
    assert checkpoint.list_checkpoints(str(tmp_path)) == ["ckpt-00000001", "ckpt-00000004", "ckpt-00000005",
                                                          "ckpt-00000006"]


def test_leftovers_of_a_killed_checkpoint_write_are_cleaned_at_the_next_start(tmp_path):
    run = tmp_path / "run"
    train_tiny(run)
    (run / ".ckpt-00000003.k1ll3d.tmp").mkdir()                      # killed while writing
    (run / ".ckpt-00000003.k1ll3d.tmp" / "G.params").write_bytes(b"half")
    (run / ".latest.x9.tmp").write_text("ckpt-00000003")
    # killed between "move the old ckpt-00000002 aside" and "rename the new one in": the old one returns
    os.rename(run / "ckpt-00000002", run / ".ckpt-00000002.r3pl.tmp.old")
    result = invoke("train", "--resume", run, "--iterations", 3, "--quiet")
    assert result.exit_code == 0, result.output
    assert sorted(n for n in os.listdir(run) if n.startswith(".")) == []
    assert checkpoint.list_checkpoints(str(run)) == ["ckpt-00000001", "ckpt-00000002", "ckpt-00000003"]


# -- 2. A damaged checkpoint is detected and survived ---------------------------------------------------
def damage_truncate(path):
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)


DAMAGE = {
    "G.params truncated": ("G.params", damage_truncate, "damaged ({n} bytes, the checkpoint recorded {m})"),
    "D.states empty": ("D.states", lambda p: open(p, "wb").close(), "damaged ({n} bytes, the checkpoint recorded {m})"),
    "G.params missing": ("G.params", os.remove, "missing from the checkpoint"),
    "G.params flipped": ("G.params", lambda p: _flip_byte(p), "damaged (contents differ from the checksum the "
                                                                 "checkpoint recorded)"),
    "meta.json garbage": ("meta.json", lambda p: open(p, "wb").write(b"\x00{garbage"), None),
}


def _flip_byte(path):
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0xFF
    open(path, "wb").write(bytes(data))


@pytest.fixture(scope="module")
def two_checkpoint_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("damaged") / "run"
    train_tiny(run, 2)
    return run


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_a_damaged_checkpoint_is_named_and_resume_falls_back(case, two_checkpoint_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(two_checkpoint_run, run)
    name, damage, reason = DAMAGE[case]
    newest = run / "ckpt-00000002"
    path = newest / name
    recorded = json.load(open(newest / "meta.json"))["files"].get(name, {}).get("bytes")
    damage(str(path))
    if reason is None:
        expected = f"{path}: damaged checkpoint metadata (not valid JSON: "
    else:
        size = os.path.getsize(path) if os.path.exists(path) else 0
        expected = f"{path}: " + reason.format(n=size, m=recorded)
    # sample / export / evaluate given the checkpoint itself: one line naming the file, no traceback
    for command in (["sample", newest, "--out", tmp_path / "s"], ["export", newest, "--out", tmp_path / "e" / "g"],
                    ["evaluate", newest, "-n", 2]):
        result = invoke(*command)
        assert result.exit_code == 1, (command, result.output)
        assert result.output.startswith("Error: " + expected) and result.output.count("\n") == 1, result.output
    # --resume on the run folder: a warning naming the skipped checkpoint, then the older one
    result = invoke("train", "--resume", run, "--iterations", 3, "--quiet")
    assert result.exit_code == 0, result.output
    assert f"WARNING skipping damaged checkpoint {newest} ({expected}" in result.output
    assert "trained 3 iterations" in result.output
    assert checkpoint.resolve(str(run)).endswith("ckpt-00000003")


def test_a_command_verifies_its_checkpoint_once(two_checkpoint_run, tmp_path, monkeypatch):
    """The checkpoint is opened once at the command's edge (every listed file hashed once) and handed
    down: sampling, the generator's loading and the statistics' training clips read the same object."""
    newest = two_checkpoint_run / "ckpt-00000002"
    opened = checkpoint.open_checkpoint(str(two_checkpoint_run))
    assert opened.folder == str(newest) and str(opened) == str(newest)
    assert opened.config.to_dict() == json.load(open(newest / "meta.json"))["config"]
    hashed = []
    real_digest = checkpoint.file_digest
    monkeypatch.setattr(checkpoint, "file_digest", lambda path: hashed.append(path) or real_digest(path))
    result = invoke("sample", two_checkpoint_run, "--out", tmp_path / "s", "-n", "4")
    assert result.exit_code == 0, result.output
    listed = sorted(json.load(open(newest / "meta.json"))["files"])
    assert sorted(os.path.basename(p) for p in hashed) == listed
    assert json.load(open(tmp_path / "s" / "summary.json"))["checkpoint"] == str(newest)


def test_a_checkpoint_without_checksums_still_fails_in_one_line(two_checkpoint_run, tmp_path):
    """Checkpoints written before checksums existed: MXNet's reader error becomes one line."""
    run = tmp_path / "run"
    shutil.copytree(two_checkpoint_run, run)
    newest = run / "ckpt-00000002"
    meta = json.load(open(newest / "meta.json"))
    del meta["files"]
    (newest / "meta.json").write_text(json.dumps(meta))
    damage_truncate(str(newest / "G.params"))
    result = invoke("sample", newest, "--out", tmp_path / "s")
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {newest / 'G.params'}: damaged or not this model's parameters (")
    assert result.output.count("\n") == 1


# -- 3. Disk full never kills a run ---------------------------------------------------------------------
def fail_once(monkeypatch, owner, attribute, error, when):
    """Make ``owner.attribute`` raise ``error`` on the calls where ``when(path)`` holds, the first time."""
    real = getattr(owner, attribute)
    state = {"failed": False}

    def wrapper(self_or_path, *args, **kwargs):
        path = args[0] if args else self_or_path
        if not state["failed"] and when(str(path)):
            state["failed"] = True
            raise error
        return real(self_or_path, *args, **kwargs)
    monkeypatch.setattr(owner, attribute, wrapper)
    return state


ENOSPC = OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("file", ["G.params", "D.params", "G.states", "D.states", "meta.json"])
def test_a_failed_write_of_any_checkpoint_file_is_reported_and_training_goes_on(file, tmp_path, monkeypatch):
    from mxnet import gluon
    if file.endswith(".params"):
        state = fail_once(monkeypatch, gluon.Block, "save_parameters",
                          MXNetError("[12:00:00] src/io/local_filesys.cc:209: Check failed: written"),
                          lambda p: p.endswith(file))
    elif file.endswith(".states"):
        state = fail_once(monkeypatch, gluon.Trainer, "save_states", ENOSPC, lambda p: p.endswith(file))
    else:
        real_dump = json.dump
        state = {"failed": False}

        def dump(obj, f, *a, **k):
            if not state["failed"] and getattr(f, "name", "").endswith("meta.json") and "files" in obj:
                state["failed"] = True
                raise ENOSPC
            return real_dump(obj, f, *a, **k)
        monkeypatch.setattr(checkpoint.json, "dump", dump)
    run = tmp_path / "run"
    result = invoke("train", *TINY, "--out", run, "--iterations", 2, "--checkpoint-every", 1)
    assert state["failed"]
    assert result.exit_code == 1
    reason = "No space left on device" if not file.endswith(".params") else \
        "[12:00:00] src/io/local_filesys.cc:209: Check failed: written"
    assert result.output.endswith(
        f"Error: trained 2 iterations, but 1 checkpoint write(s) failed (last: could not write checkpoint "
        f"{run / 'ckpt-00000001'}: {reason}; the previous checkpoint is intact); the newest intact checkpoint is "
        f"the one to resume from\n"), result.output
    assert checkpoint.list_checkpoints(str(run)) == ["ckpt-00000002"]
    assert not [n for n in os.listdir(run) if n.startswith(".ckpt")]
    checkpoint.verify_files(str(run / "ckpt-00000002"))


def test_an_unwritable_or_occupied_out_folder_is_one_line(tmp_path):
    occupied = tmp_path / "a-file"
    occupied.write_text("x")
    result = invoke("train", *TINY, "--out", occupied, "--iterations", 1)
    assert result.exit_code == 1
    assert result.output == f"Error: --out {occupied}: is a file, not a folder\n"
    if os.geteuid() != 0:           # root writes anywhere; the tmpfs test covers the full disk
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        result = invoke("train", *TINY, "--out", locked / "run", "--iterations", 1)
        assert result.exit_code == 1 and "cannot write there (Permission denied)" in result.output


@pytest.fixture
def small_tmpfs(tmp_path):
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_starting_on_a_full_disk_is_one_line_and_a_full_disk_mid_run_loses_no_checkpoint(small_tmpfs):
    # The tiny model's checkpoints (~4.5 MB with both Adam states) fill the 12 MB disk after two.
    run = small_tmpfs / "run"
    result = invoke("train", *TINY, "--out", run, "--iterations", 5, "--checkpoint-every", 1)
    assert result.exit_code == 1, result.output
    assert result.output.endswith(
        f"Error: trained 5 iterations, but 3 checkpoint write(s) failed (last: could not write checkpoint "
        f"{run / 'ckpt-00000005'}: No space left on device; the previous checkpoint is intact); the newest intact "
        f"checkpoint is the one to resume from\n"), result.output
    assert checkpoint.list_checkpoints(str(run)) == ["ckpt-00000001", "ckpt-00000002"]
    checkpoint.verify_files(checkpoint.resolve(str(run)))          # the newest on disk is whole
    assert not [n for n in os.listdir(run) if n.startswith(".ckpt")]
    # Now the disk is full: a new run says so in one line and leaves nothing behind.
    with open(small_tmpfs / "filler", "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    result = invoke("train", *TINY, "--out", small_tmpfs / "run2", "--iterations", 1)
    assert result.exit_code == 1
    assert result.output == f"Error: --out {small_tmpfs / 'run2'}: cannot write there (No space left on device)\n"
    result = invoke("train", "--resume", run, "--iterations", 6, "--quiet")      # resuming on it: the same
    assert result.exit_code == 1
    assert result.output == f"Error: --resume {run}: cannot write there (No space left on device)\n"


def test_full_disk_while_checkpointing_loses_nothing(tmp_path, monkeypatch):
    cfg = tiny_config(iterations=4, checkpoint_every=2, sample_every=0)
    run = GanTraining(cfg, str(tmp_path), progress=False)
    run.step(run.next_batch())
    run.step(run.next_batch())
    good = run.save_checkpoint()
    real_rename = os.rename

    def full_disk(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "rename", full_disk)
    run.step(run.next_batch())
    with pytest.raises(checkpoint.CheckpointError) as err:
        run.save_checkpoint()
    assert str(err.value) == (f"could not write checkpoint {tmp_path / 'ckpt-00000003'}: No space left on device; "
                              "the previous checkpoint is intact")
    # no half-written folder left (owner.lock: the live trainer's, released when its run ends)
    assert sorted(os.listdir(tmp_path)) == ["ckpt-00000002", "latest", "owner.lock"]
    assert checkpoint.resolve(str(tmp_path)) == good
    # During the loop a failed interval checkpoint is reported and training goes on; the final one must succeed.
    run._checkpoint(final=False)
    assert run.checkpoint_failures == 1
    monkeypatch.setattr(os, "rename", real_rename)
    run._checkpoint(final=True)
    assert checkpoint.resolve(str(tmp_path)).endswith("ckpt-00000003")
    run.data.close()


# -- 4. kill -9 at random points, then an exact resume ---------------------------------------------------
def newest_iteration(run):
    names = checkpoint.list_checkpoints(str(run))
    return int(names[-1][5:]) if names else 0


def test_kill_9_at_random_points_then_resume_is_bit_identical(tmp_path):
    """The training process is killed three times at random moments (checkpoints are written every
    iteration, so some kills land inside a write); each time it is resumed; the final parameters must
    equal an uninterrupted run's bit for bit."""
    command = [sys.executable, "-m", "tinyvideo_mx.cli", "train"]
    settings = ["--preset", "tiny", "--quiet", "--sample-every", "0", "--iterations", "40", "--checkpoint-every", "1"]
    straight = tmp_path / "straight"
    subprocess.run(command + settings + ["--out", str(straight)], check=True, capture_output=True)
    run = tmp_path / "killed"
    rng = random.Random(1234)
    process = subprocess.Popen(command + settings + ["--out", str(run)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    kills, reached = 0, 0
    for _ in range(3):
        deadline = time.time() + 60
        while newest_iteration(run) <= reached and time.time() < deadline:
            time.sleep(0.01)              # training again (past start-up), then a random moment
        time.sleep(rng.uniform(0.0, 0.3))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait()
        reached = newest_iteration(run)
        process = subprocess.Popen(command + ["--resume", str(run), "--quiet"], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
    assert process.wait(timeout=300) == 0
    assert kills >= 1
    assert params_bytes(run / "ckpt-00000040") == params_bytes(straight / "ckpt-00000040")


# -- 5. Images are measured before they are decoded ------------------------------------------------------
def jpeg_claiming(width, height):
    """A real small JPEG whose frame header (SOF0) is rewritten to claim width x height."""
    ok, buf = cv2.imencode(".jpg", np.zeros((16, 16, 3), np.uint8))
    data = bytearray(buf.tobytes())
    sof = data.find(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def png_claiming(width, height):
    ok, buf = cv2.imencode(".png", np.zeros((16, 16, 3), np.uint8))
    data = bytearray(buf.tobytes())
    data[16:24] = struct.pack(">II", width, height)       # IHDR width, height, and its CRC to match
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


@pytest.fixture
def no_decoding(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the image was decoded")
    monkeypatch.setattr(cv2, "imdecode", refuse)


def test_a_decompression_bomb_strip_is_refused_from_its_header(no_decoding):
    data = jpeg_claiming(16384, 16384)
    assert len(data) < 1000
    with pytest.raises(StripError) as e:
        decode_strip(data, "clips/bomb.jpg")
    assert str(e.value) == ("clips/bomb.jpg: image header claims 268,435,456 pixels; the limit is "
                            f"{MAX_PIXELS:,} pixels; refused before decoding")


@pytest.mark.parametrize("width", [1, 896])
def test_strip_width_is_checked(width, no_decoding):
    data = jpeg_claiming(width, 128 * 32)
    with pytest.raises(StripError) as e:
        decode_strip(data, "clips/odd.jpg")
    assert str(e.value) == (f"clips/odd.jpg: strip is {width} px wide; frames of 128 rows (--frame-height) must be "
                            "64 to 256 px wide")


def test_a_bomb_image_for_the_conditional_model_is_refused(no_decoding):
    from tinyvideo_mx.data.image_input import ImageError, decode_image
    for name, data in (("photo.png", png_claiming(30000, 30000)), ("photo.jpg", jpeg_claiming(12000, 12000))):
        with pytest.raises(ImageError) as e:
            decode_image(data, 64, name)
        # past Pillow's own bomb limit (~179 MP) its header reader gives the pixel count only
        claim = "900,000,000 pixels" if name.endswith("png") else "12000x12000 pixels"
        assert str(e.value) == f"{name}: image header claims {claim}; the limit is {MAX_PIXELS:,} pixels; " \
                               "refused before decoding"


def test_a_good_strip_still_decodes():
    frames = random_frames(np.random.default_rng(0), 32, 128)
    assert decode_strip(encode_strip(frames)).shape == (3, 32, 64, 64)


# -- 6. List files as people write them --------------------------------------------------------------
def test_list_files_take_paths_with_spaces_comments_and_blank_lines(tmp_path):
    (tmp_path / "clips").mkdir()
    for name in ("with space.jpg", "plain.jpg"):
        (tmp_path / "clips" / name).write_bytes(b"x")
    (tmp_path / "list.txt").write_text("# my clips\n\nclips/with space.jpg\n  \nclips/plain.jpg extra tokens\n"
                                       "   # indented comment\n")
    assert read_list(str(tmp_path / "list.txt")) == [str(tmp_path / "clips" / "with space.jpg"),
                                                     str(tmp_path / "clips" / "plain.jpg")]
    (tmp_path / "labels.txt").write_text("# path class\nclips/with space.jpg 3\nclips/plain.jpg 1 ignored\n")
    assert read_labelled_list(str(tmp_path / "labels.txt")) == (
        [str(tmp_path / "clips" / "with space.jpg"), str(tmp_path / "clips" / "plain.jpg")], [3, 1])


@pytest.mark.parametrize("content, message", [
    (b"a.jpg\nb\x00.jpg\n", "{list}:2: NUL byte in the line (is this a list file?)"),
    (b"a.jpg\n\xff\xfe.jpg\n", "{list}:2: not UTF-8 text (is this a list file?)"),
    (b"# only comments\n\n", "{list}: list file has no entries"),
])
def test_bad_list_lines_name_the_file_and_line(content, message, tmp_path):
    path = tmp_path / "list.txt"
    path.write_bytes(content)
    with pytest.raises(ListFileError) as e:
        read_list(str(path))
    assert str(e.value) == message.format(list=path)


# -- 7. Every option is validated at the command line ----------------------------------------------------
BAD_OPTIONS = [
    (["train", "--batch-size", "0"], "Error: Invalid value for '--batch-size': 0 is not in the range x>=1."),
    (["train", "--batch-size", "-4"], "Error: Invalid value for '--batch-size': -4 is not in the range x>=1."),
    (["train", "--checkpoint-every", "0"], "Error: Invalid value for '--checkpoint-every': 0 is not in the range x>=1."),
    (["train", "--frame-height", "0"], "Error: Invalid value for '--frame-height': 0 is not in the range x>=1."),
    (["train", "--ngf", "0"], "Error: Invalid value for '--ngf': 0 is not in the range x>=1."),
    (["train", "--iterations", "0"], "Error: Invalid value for '--iterations': 0 is not in the range x>=1."),
    (["train", "--frames", "20"], "Error: Invalid value for '--frames': 20 is not a positive multiple of 16 "
                                  "(16, 32, 48, 64...)"),
    (["train", "--lr", "0"], "Error: Invalid value for '--lr': 0.0 is not in the range x>0."),
    (["sample", "{run}", "--fps", "0"], "Error: Invalid value for '--fps': 0.0 is not in the range x>0."),
    (["sample", "{run}", "-n", "0"], "Error: Invalid value for '-n' / '--num': 0 is not in the range x>=1."),
    (["sample", "{run}", "--scale", "0"], "Error: Invalid value for '--scale': 0 is not in the range 1<=x<=16."),
    (["export", "{run}", "--out", "{tmp}/dir/"], "Error: Invalid value for '--out': '{tmp}/dir/' is a folder; give "
                                                 "a file prefix such as {tmp}/dir/vgan"),
    (["serve", "x", "--port", "70000"], "Error: Invalid value for '--port': 70000 is not in the range 0<=x<=65535."),
    (["stabilize", "v.mp4", "--out", "o", "--processes", "0"],
     "Error: Invalid value for '--processes' / '--workers': 0 is not in the range x>=1."),
]


@pytest.mark.parametrize("args, message", BAD_OPTIONS, ids=[" ".join(a[:3]) for a, _ in BAD_OPTIONS])
def test_every_bad_option_is_one_line_and_exit_2(args, message, tiny_model, tmp_path):
    fill = dict(run=tiny_model / "run", tmp=tmp_path)
    result = invoke(*[a.format(**fill) for a in args])
    assert result.exit_code == 2, result.output
    assert result.output.rstrip("\n").splitlines()[-1] == message.format(**fill)


def test_a_batch_that_does_not_split_over_the_contexts_is_an_error(tmp_path):
    result = invoke("train", *TINY, "--out", tmp_path / "r", "--batch-size", 3, "--ctx", "cpu0,cpu1")
    assert result.exit_code == 1
    assert result.output == "Error: --batch-size 3 does not split evenly over the 2 replicas of --ctx cpu0,cpu1\n"


def test_stabilize_says_why_nothing_was_written(tmp_path, caplog):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = invoke("stabilize", empty, "--out", tmp_path / "o1", "--quiet")
    assert result.exit_code == 1
    assert result.output.splitlines()[-1].startswith(f"Error: no video files found in {empty} (looked for .mp4 ")
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    result = invoke("stabilize", text, "--out", tmp_path / "o2", "--quiet")
    assert result.exit_code == 1
    assert [r.getMessage() for r in caplog.records].count(
        f"skipped {text}: cannot be decoded as a video ({text}: Invalid data found when processing input)") == 1
    assert result.output.splitlines()[-1] == "Error: no clips written: 1 of 1 videos could not be read (named above)"


# -- 8. One error family ----------------------------------------------------------------------------
def test_every_expected_error_is_a_tinyvideo_error():
    from stabilize.video import VideoError
    from tinyvideo_mx.data.image_input import ImageError, ImageTooLarge
    from tinyvideo_mx.data.iterator import TooManyBadClips
    from tinyvideo_mx.serving.contract import RequestError
    from tinyvideo_mx.training.launch import LaunchError
    for cls in (checkpoint.CheckpointError, run_folder.RunFolderError, ListFileError, StripError, TooManyBadClips,
                FileProblem, ImageError, ImageTooLarge, VideoError, LaunchError, RequestError, SettingError):
        assert issubclass(cls, TinyVideoError), cls


def test_an_unexpected_error_keeps_its_traceback(tmp_path, monkeypatch):
    def boom(self):
        raise RuntimeError("a bug")
    monkeypatch.setattr(GanTraining, "run", boom)
    result = invoke("train", *TINY, "--out", tmp_path / "r")
    assert isinstance(result.exception, RuntimeError)       # not turned into a one-line "Error:"
    assert "Error:" not in result.output


def test_libjpeg_warnings_name_the_file(caplog, capfd):
    ok, buf = cv2.imencode(".jpg", (np.random.default_rng(0).random((128 * 16, 128, 3)) * 255).astype(np.uint8))
    data = buf.tobytes()
    data = data[:-2] + b"\x12" * 50 + data[-2:]             # junk before the end-of-image marker
    with caplog.at_level("WARNING"):
        for _ in range(2):                                   # a file drawn again is not reported again
            clip = decode_strip(data, "clips/junk.jpg", frames=16)
    assert clip.shape == (3, 16, 64, 64)                     # still usable: a warning, not a bad clip
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1, messages
    # libjpeg reads a few of the junk bytes as image data; the rest it reports
    assert re.fullmatch(r"clips/junk\.jpg: Corrupt JPEG data: \d+ extraneous bytes before marker 0xd9", messages[0])
    printed = [line for line in capfd.readouterr().err.splitlines() if "Corrupt JPEG" in line]
    assert all("clips/junk.jpg" in line for line in printed), printed    # nothing anonymous on stderr


# -- 9. A run has one trainer -----------------------------------------------------------------------------
TRAIN = [sys.executable, "-m", "tinyvideo_mx.cli", "train"]


def logged_iterations(run):
    return [json.loads(line)["iteration"] for line in open(os.path.join(run, "metrics.jsonl"))]


def wait_for(test, timeout=60):
    deadline = time.time() + timeout
    while not test() and time.time() < deadline:
        time.sleep(0.02)
    return test()


def test_a_second_trainer_on_a_live_run_is_refused_and_the_first_logs_every_iteration_once(tmp_path):
    run = tmp_path / "run"
    settings = TINY + ["--iterations", "150", "--checkpoint-every", "5"]
    first = subprocess.Popen(TRAIN + settings + ["--out", str(run)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    assert wait_for(lambda: newest_iteration(run) >= 5), "the first trainer did not get going"
    started = time.time()
    second = subprocess.run(TRAIN + ["--resume", str(run), "--quiet"], capture_output=True, text=True, timeout=60)
    elapsed = time.time() - started
    assert second.returncode == 1
    lines = [line for line in second.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, second.stderr
    assert re.fullmatch(rf"Error: --resume {re.escape(str(run))} is in use by another trainer: PID {first.pid} on "
                        rf"\S+ since \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d", lines[0]), lines[0]
    assert first.poll() is None, "the first trainer must still be running"
    assert not [n for n in os.listdir(run) if n.startswith(".write-test")]
    assert first.wait(timeout=300) == 0, first.stderr.read()[-2000:]
    iterations = logged_iterations(run)
    assert iterations == sorted(set(iterations)) and iterations[-1] == 150
    assert not os.path.exists(run / "owner.lock"), "the owner lock is released at the end"
    assert elapsed < 30        # seconds, start-up included (about 2 s here); the point is: no waiting


def test_a_killed_owner_is_taken_over_with_a_warning(tmp_path):
    run = tmp_path / "run"
    settings = TINY + ["--iterations", "400", "--checkpoint-every", "2"]
    first = subprocess.Popen(TRAIN + settings + ["--out", str(run)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    assert wait_for(lambda: newest_iteration(run) >= 2)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert os.path.exists(run / "owner.lock" / "owner.json")      # left behind by the kill
    resumed = subprocess.run(TRAIN + ["--resume", str(run), "--quiet", "--iterations", str(newest_iteration(run) + 2)],
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"took over the run from a trainer that is gone: its owner (PID {first.pid} on" in resumed.stderr


def test_another_hosts_lock_is_respected_unless_stolen(tmp_path):
    run = tmp_path / "run"
    os.makedirs(run / "owner.lock")
    with open(run / "owner.lock" / "owner.json", "w") as f:
        json.dump({"host": "elsewhere.invalid", "pid": 1, "process_start": 1, "claimed": "2026-01-02 03:04:05"}, f)
    with pytest.raises(run_folder.RunInUse) as refused:
        run_folder.take_ownership(str(run), "--resume")
    assert str(refused.value) == (f"--resume {run} is in use by another trainer: PID 1 on elsewhere.invalid since "
                                  "2026-01-02 03:04:05 (another host's lock: add --steal-lock if that trainer is "
                                  "known to be gone)")
    run_folder.take_ownership(str(run), "--resume", steal=True)
    assert json.load(open(run / "owner.lock" / "owner.json"))["pid"] == os.getpid()
    run_folder.take_ownership(str(run), "--resume")              # the owner may claim its run again
    run_folder.release_ownership(str(run))
    assert not os.path.exists(run / "owner.lock")


# -- 10. Only regular files of a plausible size are read ----------------------------------------------------
@pytest.fixture
def special_files(tmp_path):
    """A symlink to /dev/zero, a FIFO with no writer, a 1 GB sparse file, a folder."""
    os.symlink("/dev/zero", tmp_path / "zero.jpg")
    os.mkfifo(tmp_path / "fifo.jpg")
    with open(tmp_path / "sparse.jpg", "wb") as f:
        f.truncate(10 ** 9)
    os.mkdir(tmp_path / "folder.jpg")
    return {"zero.jpg": "is a character device, not a regular strip file",
            "fifo.jpg": "is a FIFO (named pipe), not a regular strip file",
            "sparse.jpg": "strip file is 1,000,000,000 bytes, more than the 120,000,000 allowed",
            "folder.jpg": "is a folder, not a regular strip file"}


def test_special_and_huge_files_are_refused_before_they_are_read(tmp_path, special_files):
    from tinyvideo_mx.data.image_input import ImageError, load_image
    from tinyvideo_mx.data.strips import load_strip
    for name, reason in special_files.items():
        with pytest.raises(StripError) as refused:
            load_strip(str(tmp_path / name))
        assert str(refused.value) == f"{tmp_path / name}: {reason}"
    with pytest.raises(ImageError) as refused:
        load_image(str(tmp_path / "fifo.jpg"), 64)
    assert str(refused.value) == f"{tmp_path / 'fifo.jpg'}: is a FIFO (named pipe), not a regular image file"
    with pytest.raises(ListFileError) as refused:
        read_list(str(tmp_path / "zero.jpg"))
    assert str(refused.value) == f"{tmp_path / 'zero.jpg'}: is a character device, not a regular list file"


def test_a_list_naming_special_files_trains_on_with_one_line_each(tmp_path, special_files):
    good = []
    for i in range(4):
        path = tmp_path / f"good{i}.jpg"
        path.write_bytes(encode_strip(random_frames(np.random.default_rng(i), 32, 128)))
        good.append(path.name)
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(good + list(special_files)) + "\n")
    # the CLI in a process that reports its own peak RSS (kB) as its last line: VmHWM, not ru_maxrss,
    # which Linux carries over from the forking test process across exec
    measured = ("import runpy, sys\nsys.argv = ['tinyvideo-mx'] + sys.argv[1:]\ntry:\n"
                "    runpy.run_module('tinyvideo_mx.cli', run_name='__main__')\nfinally:\n"
                "    hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
                "    print('peak_rss_kb', hwm.split()[1], file=sys.stderr)\n")
    out = subprocess.run([sys.executable, "-c", measured, "train"] + TINY +
                         ["--data", str(listing), "--out", str(tmp_path / "run"), "--iterations", "6",
                          "--frame-height", "128"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    for name, reason in special_files.items():
        assert out.stderr.count(f"bad clip skipped: {tmp_path / name}: {reason}") == 1, (name, out.stderr[-3000:])
    peak_kb = int(out.stderr.strip().splitlines()[-1].split()[-1])
    assert peak_kb < 2 * 2 ** 20, f"peak RSS {peak_kb / 2 ** 20:.2f} GiB"
