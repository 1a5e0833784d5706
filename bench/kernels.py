"""What holding oneDNN to AVX2's kernels costs the demo (``--kernels avx2``, the demo preset's; runtime/kernels.py):
the demo's training iterations per second on its own kernels and on this CPU's fastest, each in a process of
its own (oneDNN fixes its kernels once per process), alternating, so both see the same hour.

    python bench/kernels.py --iterations 200 --rounds 3
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from machine import describe  # noqa: E402  (bench/ is the script's folder)
from train_step import run_in_subprocess  # noqa: E402


def seconds_per_iteration(kernels, iterations):
    """The demo's step on ``kernels`` in a fresh process (train_step.run_one on its data iterator)."""
    return run_in_subprocess(16, iterations, preset="demo", kernels=kernels, warmup=5)["seconds_per_iteration"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=200, help="timed iterations per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(describe())
    print("shape: the demo preset (clips 3x16x32x32, ngf = ndf = 16, resize upsampling), batch 16, "
          f"{args.iterations} iterations after 5 warm-up ones, its built-in data")
    print(f"{'round':>5} {'avx2 it/s':>10} {'native it/s':>12} {'avx2 / native time':>19}")
    for round_ in range(1, args.rounds + 1):
        avx2 = seconds_per_iteration("avx2", args.iterations)
        native = seconds_per_iteration("native", args.iterations)
        print(f"{round_:>5} {1 / avx2:>10.2f} {1 / native:>12.2f} {avx2 / native:>18.2f}x", flush=True)


if __name__ == "__main__":
    main()
