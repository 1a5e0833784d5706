"""Stabiliser speed and quality on a real clip, faithful vs default mode, in one run.

    python bench/stabilize.py [VIDEO ...]     (default: Debian opencv-doc's vtest.avi and tree.avi, and two
                                               640x480 clips with known camera motion, translation and rotation)

Prints frames/s (output frames written per second of wall time, decoding included) and the residual
motion of the written clips (mean phase-correlation shift between consecutive output frames, px).
"""
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

DEFAULT = ["/usr/share/doc/opencv-doc/examples/data/vtest.avi", "/usr/share/doc/opencv-doc/examples/data/tree.avi"]


def measure(video, config):
    from stabilize.metrics import residual_motion
    from stabilize.stabilizer import clips
    start = time.perf_counter()
    written = [v for kind, v in clips(video, config) if kind == "clip"]
    seconds = time.perf_counter() - start
    frames = sum(len(c) for c in written)
    motion = sum(residual_motion(c) * (len(c) - 1) for c in written) / max(1, frames - len(written))
    return frames / seconds, motion, len(written), frames, seconds


def main():
    import cv2
    videos = sys.argv[1:] or [v for v in DEFAULT if os.path.exists(v)]
    print(f"CPU ({os.cpu_count()} cores), OpenCV {cv2.__version__}, cv2 threads {cv2.getNumThreads()}; "
          f"output 128x128 clips of up to 34 frames")
    print(f"{'video':>12} {'mode':>9} {'frames/s':>9} {'residual px':>12} {'clips':>6} {'frames':>7} {'seconds':>8}")
    with tempfile.TemporaryDirectory() as folder:
        from stabilize.synthetic import MOTIONS, camera, texture
        from stabilize.video import write_video
        for motion in ("translate", "rotate"):   # known camera motion: the true residual is 0
            path = os.path.join(folder, f"{motion}.avi")
            write_video(path, camera(texture(1, 1280), 100, MOTIONS[motion], size=(480, 640)), fps=25)
            videos.append(path)
        report(videos)


def report(videos):
    from stabilize import StabilizeConfig
    for video in videos:
        results = {}
        for mode, config in (("faithful", StabilizeConfig.faithful()), ("default", StabilizeConfig())):
            fps, motion, n, frames, seconds = measure(video, config)
            results[mode] = fps
            print(f"{os.path.basename(video):>12} {mode:>9} {fps:>9.1f} {motion:>12.3f} {n:>6} {frames:>7} {seconds:>8.1f}", flush=True)
        print(f"{'':>12} speed-up of the default mode: {results['default'] / results['faithful']:.1f}x")


if __name__ == "__main__":
    main()
