"""The paper's recipe in PyTorch (bench/torch_vgan.py), trained on the clips a tinyvideo-mx run trained on,
for a given wall time, then judged by the same weight-free statistics (tinyvideo_mx/metrics/clip_statistics.py).

    pip install torch==2.13.0     # benchmark-only; never a dependency of the package
    python bench/torch_equal_time.py --like runs/real --seconds 480 --clips 52 --out runs/real-torch

``--like RUN`` takes the data list, frames, size, widths and batch from the run's config.json; give the
seconds that run trained. PyTorch gets the same threads (all usable cores unless --threads says). Its loop
is the usual port's (bench/torch_vgan.py: transposed convolutions, no weight average, the original's
losses, batches drawn with replacement as main.lua draws them). Samples come from G in eval mode (running
BatchNorm statistics), as `tinyvideo-mx sample` runs a G without a weight average. Writes
OUT/statistics.json, OUT/grid.png (frames 1, middle and last of 16 clips, one row per frame) and prints
the table `tinyvideo-mx sample` prints.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.environ.get("TINYVIDEO_MX_ROOT", os.path.dirname(HERE))
sys.path[:0] = [HERE, ROOT]

# The real clips come from a child process: it loads MXNet (the data iterator), which this process
# never does, so PyTorch and MXNet never share one process's OpenMP runtime.
REAL_CLIPS = """
import json, sys, numpy as np
from tinyvideo_mx.config import TrainConfig
from tinyvideo_mx.data.sources import training_clips
with open(sys.argv[1]) as handle:
    config = TrainConfig.from_dict(json.load(handle))
np.save(sys.argv[3], training_clips(config, int(sys.argv[2])))
"""


def run_config(run):
    with open(os.path.join(run, "config.json")) as handle:
        return json.load(handle)


def load_real_clips(run, n):
    with tempfile.TemporaryDirectory() as scratch:
        target = os.path.join(scratch, "real.npy")
        # run from this folder, as the trainer was (a relative data list is relative to it)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
        subprocess.run([sys.executable, "-c", REAL_CLIPS, os.path.join(run, "config.json"), str(n), target],
                       check=True, env=env)
        return np.load(target)


def train_for(seconds, real, config, threads, seed):
    """Train until ``seconds`` of wall time have passed; returns (training, iterations)."""
    import torch
    from torch_vgan import Training
    torch.set_num_threads(threads)
    frames, size, batch = config["frames"], config["size"], config["batch_size"]
    run = Training(batch, seed=seed, ngf=config["ngf"], ndf=config["ndf"], frames=frames, size=size)
    clips = torch.from_numpy(real)
    rng = np.random.default_rng(seed)
    iterations, start = 0, time.monotonic()
    while time.monotonic() - start < seconds:
        picked = torch.from_numpy(rng.integers(0, len(clips), batch))
        run.step(clips[picked], torch.randn(batch, 100))
        iterations += 1
    return run, iterations


def generate(training, n, batch=16):
    import torch
    training.G.eval()
    videos, masks = [], []
    with torch.no_grad():
        for start in range(0, n, batch):
            video, mask = training.G(torch.randn(min(batch, n - start), 100))
            videos.append(video.numpy())
            masks.append(mask.numpy())
    return np.concatenate(videos), np.concatenate(masks)


def grid_still(videos):
    """Frames 1, middle and last of up to 16 clips: one row per frame, uint8 RGB."""
    from tinyvideo_mx.generation.media import to_frames
    clips = [to_frames(video) for video in videos[:16]]       # each (T, H, W, 3) uint8
    last = clips[0].shape[0] - 1
    rows = [np.concatenate([clip[t] for clip in clips], axis=1) for t in (0, last // 2, last)]
    return np.concatenate(rows, axis=0)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--like", required=True, help="tinyvideo-mx run folder whose data and sizes to use")
    parser.add_argument("--seconds", type=float, required=True, help="wall time to train for")
    parser.add_argument("--clips", type=int, default=300, help="clips generated and real clips compared")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed: pip install torch==2.13.0 (benchmark-only), then run this again")
        return 0
    config = run_config(args.like)
    print(f"PyTorch {torch.__version__}, {args.threads} threads, CPU; clips 3x{config['frames']}x{config['size']}x"
          f"{config['size']}, ngf {config['ngf']}, ndf {config['ndf']}, batch {config['batch_size']}, "
          f"{args.seconds:.0f} s of training")
    from tinyvideo_mx.metrics.clip_statistics import FRECHET_MIN_CLIPS
    real = load_real_clips(args.like, max(args.clips, 2 * FRECHET_MIN_CLIPS))   # enough for the Frechet row
    training, iterations = train_for(args.seconds, real, config, args.threads, args.seed)
    print(f"trained {iterations} iterations on {len(real)} real clips ({iterations / args.seconds:.2f} it/s)")
    videos, masks = generate(training, args.clips)
    from tinyvideo_mx.generation.media import write_png
    from tinyvideo_mx.metrics.clip_statistics import compare, format_rows
    rows = compare(videos, real, masks)
    print("\n".join(format_rows(rows)))
    os.makedirs(args.out, exist_ok=True)
    write_png(os.path.join(args.out, "grid.png"), grid_still(videos))
    with open(os.path.join(args.out, "statistics.json"), "w") as handle:
        json.dump(dict(iterations=iterations, seconds=args.seconds, threads=args.threads, real_clips=len(real),
                       generated_clips=len(videos), rows=rows), handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
