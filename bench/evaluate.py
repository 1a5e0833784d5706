"""Evaluation speed: clips/s through I3D (FVD, 16x224x224) and C3D (IS, 16x112x112) on this machine,
with random weights (speed does not depend on the values), and what a 2048-clip FVD costs.

    python bench/evaluate.py [--clips 16] [--batch 8]
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from machine import describe  # noqa: E402  (bench/ is the script's folder)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    import numpy as np

    from tinyvideo_mx.metrics import feature_statistics, frechet_distance, video_networks
    print(describe())
    clips = np.random.default_rng(0).uniform(-1, 1, (args.clips, 3, 32, 64, 64)).astype(np.float32)
    for name, net in (("I3D (FVD)", video_networks.i3d()), ("C3D (IS)", video_networks.c3d())):
        net.outputs([clips[:args.batch]])                      # warm-up
        start = time.perf_counter()
        out = net.outputs([clips])
        rate = len(clips) / (time.perf_counter() - start)
        p = net.protocol
        print(f"{name:<10} input 3x{p.frames}x{p.size}x{p.size}: {rate:6.2f} clips/s -> 2048 clips in "
              f"{2048 / rate / 60:5.1f} min (outputs {out.shape[1]})", flush=True)
    features = np.random.default_rng(1).standard_normal((2048, 400))
    start = time.perf_counter()
    stats = feature_statistics(features)
    frechet_distance(*stats, *stats)
    print(f"statistics + Frechet distance of 2048 x 400 features: {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    import warnings
    warnings.filterwarnings("ignore")
    main()
