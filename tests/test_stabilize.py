import json
import os
import subprocess

import cv2
import pytest
from click.testing import CliRunner

from stabilize import StabilizeConfig, stabilize_many
from stabilize.metrics import residual_motion
from stabilize.stabilizer import clips
from stabilize.synthetic import MOTIONS, camera, texture
from stabilize.video import VideoError, frames, write_video
from tinyvideo_mx.data import StripIter, load_strip, read_list

OPENCV_DATA = "/usr/share/doc/opencv-doc/examples/data"


@pytest.mark.parametrize("motion", sorted(MOTIONS))
def test_known_camera_motion_is_removed(tmp_path, motion):
    scene = texture(1, 480, (1.0, 0.9, 0.8))
    path = str(tmp_path / f"{motion}.avi")
    write_video(path, camera(scene, 40, MOTIONS[motion]), fps=25)
    moving = [cv2.resize(f[:, 40:280], (128, 128))[..., ::-1] for f in camera(scene, 36, MOTIONS[motion])]
    assert residual_motion(moving) > 1.0 or motion != "translate"     # the input really moves
    found = [v for kind, v in clips(path, StabilizeConfig()) if kind == "clip"]
    assert found and found[0].shape == (34, 128, 128, 3)
    assert residual_motion(found[0]) < 1.0, residual_motion(found[0])


def test_no_clip_straddles_a_hard_cut(tmp_path):
    red, blue = texture(2, 480, (1.0, 0.3, 0.3)), texture(3, 480, (0.3, 0.3, 1.0))
    still = lambda t: (1.0 * t, 0.0, 0.0, 1.0)
    path = str(tmp_path / "cut.avi")
    write_video(path, camera(red, 30, still) + camera(blue, 30, still), fps=25)   # BGR: "red" is blue-ish
    found = [v for kind, v in clips(path, StabilizeConfig()) if kind == "clip"]
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
    import imageio_ffmpeg
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=1", "-c:a", "aac", str(folder / "audio.mp4")], check=True)
    long = str(folder / "long.avi")
    write_video(long, camera(texture(6, 480, (1, 1, 1)), 60, MOTIONS["translate"]), fps=25)
    data = open(long, "rb").read()
    (folder / "truncated.avi").write_bytes(data[: len(data) // 2])
    os.remove(long)


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


def test_locked_videos_are_left_to_their_worker(tmp_path):
    path = str(tmp_path / "v.avi")
    write_video(path, camera(texture(7, 480, (1, 1, 1)), 20, MOTIONS["translate"]), fps=25)
    from stabilize.runner import video_folder
    os.makedirs(video_folder(str(tmp_path / "out"), path) + ".lock")
    report = stabilize_many([path], str(tmp_path / "out"))
    assert report["per_video"][0]["status"] == "locked" and report["clips_written"] == 0


def test_fps_resampling_halves_the_frames(tmp_path):
    path = str(tmp_path / "v.avi")
    write_video(path, camera(texture(8, 480, (1, 1, 1)), 20, MOTIONS["translate"]), fps=20)
    assert sum(1 for _ in frames(path)) == 20
    assert sum(1 for _ in frames(path, fps=10)) == 10
    with pytest.raises(VideoError, match="file not found"):
        next(frames(str(tmp_path / "nope.avi")))


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
    pooled = stabilize_many([str(tmp_path)], str(tmp_path / "pooled"), workers=2)
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
