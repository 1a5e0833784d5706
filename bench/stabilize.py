"""Stabiliser speed and quality per video and mode, in one run, as one table.

    python bench/stabilize.py [VIDEO ...]   (default: Debian opencv-doc's four videos - apt install opencv-doc -
                                             and two 640x480 clips with known camera motion)

Modes: raw (no stabilisation: every frame resized and cropped, cut into consecutive clips of up to 34
frames - the motion there is to remove), faithful (``--faithful``, the original algorithm) and default.
Columns: output frames written per second of wall time (decoding included), clips, frames kept in
clips, and residual motion - the mean global shift between consecutive 128-px output frames by phase
correlation (px; lower is steadier). The summary compares the default with the faithful mode: frames
kept, and residual motion over all kept clips and over the clips both keep (spans overlapping by at
least 90 %), since the default also keeps shots the original drops, which may be harder.
"""
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

OPENCV_DATA = "/usr/share/doc/opencv-doc/examples/data"
DEFAULT = [os.path.join(OPENCV_DATA, n) for n in ("Megamind.avi", "Megamind_bugy.avi", "tree.avi", "vtest.avi")]


def raw_clips(video, config):
    from stabilize.video import frames, resize_and_crop
    import numpy as np
    out = [resize_and_crop(f, config.video_size)[..., ::-1] for f in frames(video)][config.skip_frames:]
    step = config.max_frames
    return [(config.skip_frames + i, np.stack(out[i:i + step])) for i in range(0, len(out), step)
            if len(out[i:i + step]) >= config.min_frames]


def measure(video, mode):
    from stabilize import StabilizeConfig
    from stabilize.stabilizer import clips
    config = StabilizeConfig.faithful() if mode == "faithful" else StabilizeConfig()
    start = time.perf_counter()
    if mode == "raw":
        written, dropped = raw_clips(video, config), {}
    else:
        written, dropped = [], {}
        for kind, value in clips(video, config):
            if kind == "clip":
                written.append(value)
            else:
                reason = value.split(" (")[0]
                dropped[reason] = dropped.get(reason, 0) + 1
    seconds = time.perf_counter() - start
    frames = sum(len(c) for _, c in written)
    return dict(fps=frames / seconds, clips=len(written), frames=frames, motion=mean_motion(written),
                seconds=seconds, dropped=dropped, written=written)


def mean_motion(written):
    """Residual motion per frame step over [(first frame, clip)]."""
    from stabilize.metrics import residual_motion
    steps = sum(len(c) - 1 for _, c in written)
    return sum(residual_motion(c) * (len(c) - 1) for _, c in written) / max(1, steps)


def shared(a, b):
    """The clips of ``a`` and of ``b`` whose spans overlap by >= 90 % of the longer one."""
    pairs = [(x, y) for x in a for y in b
             if min(x[0] + len(x[1]), y[0] + len(y[1])) - max(x[0], y[0]) >= 0.9 * max(len(x[1]), len(y[1]))]
    return [x for x, _ in pairs], [y for _, y in pairs]


def main():
    import cv2
    videos = sys.argv[1:] or [v for v in DEFAULT if os.path.exists(v)]
    print(f"CPU ({os.cpu_count()} cores), OpenCV {cv2.__version__}, cv2 threads {cv2.getNumThreads()}; "
          f"output 128x128 clips of 16-34 frames")
    with tempfile.TemporaryDirectory() as folder:
        from stabilize.synthetic import MOTIONS, camera, texture
        from stabilize.video import write_video
        if not sys.argv[1:]:
            for motion in ("translate", "rotate"):   # known camera motion: the true residual is 0
                path = os.path.join(folder, f"{motion}.avi")
                write_video(path, camera(texture(1, 1280), 100, MOTIONS[motion], size=(480, 640)), fps=25)
                videos.append(path)
        report(videos)


def report(videos):
    from stabilize.video import frames
    header = ("| video | size | mode | frames/s | clips | frames kept | residual px | seconds | drops |\n"
              "|---|---|---|---|---|---|---|---|---|")
    print(header)
    summary = []
    for video in videos:
        first = next(frames(video))
        size = f"{first.shape[1]}x{first.shape[0]}"
        results = {}
        for mode in ("raw", "faithful", "default"):
            r = results[mode] = measure(video, mode)
            drops = ", ".join(f"{k} {v}" for k, v in sorted(r["dropped"].items())) or "-"
            print(f"| {os.path.basename(video)} | {size} | {mode} | {r['fps']:.1f} | {r['clips']} | {r['frames']} | "
                  f"{r['motion']:.3f} | {r['seconds']:.1f} | {drops} |", flush=True)
        f, d = results["faithful"], results["default"]
        common_f, common_d = shared(f["written"], d["written"])
        summary.append(f"{os.path.basename(video)}: the default keeps {d['frames'] / max(1, f['frames']):.0%} of the "
                       f"faithful frames at {d['fps'] / max(f['fps'], 1e-9):.1f}x the frames/s; residual "
                       f"{d['motion']:.3f} vs {f['motion']:.3f} px over all kept clips, {mean_motion(common_d):.3f} vs "
                       f"{mean_motion(common_f):.3f} px over the {len(common_d)} clips both keep")
    print("\n" + "\n".join(summary))


if __name__ == "__main__":
    main()
