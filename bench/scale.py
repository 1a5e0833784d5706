"""One table for scaling: training clips/s at full size on 1 and 2 CPU contexts, float32 and AMP
(bfloat16), next to the loader's clips/s with 1, 2 and 4 decoding threads.

    python bench/scale.py [--batch 8] [--iterations 3]

Training rows: 3x32x64x64 clips, ngf = ndf = 64, the original G step, hybridized (with AMP on CPU the
generator runs imperatively, see tinyvideo_mx/precision.py), one process per row, after one warm-up
iteration, random clips in memory (the step is measured, not the loader). Loader rows: 128-px JPEG strips
of the built-in synthetic data decoded and shrunk to 3x32x64x64, batch 16.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from machine import describe  # noqa: E402  (bench/ is the script's folder)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=3)
    args = parser.parse_args()
    from loader import measure, synthetic_paths
    from train_step import run_in_subprocess
    print(describe())
    print(f"{'what':<34} {'shape':<24} {'batch':>5} {'s/batch':>8} {'clips/s':>8} {'peak RSS':>9}")
    shape = "3x32x64x64"
    for ctx in ("cpu0", "cpu0,cpu1"):
        for amp in (False, True):
            r = run_in_subprocess(args.batch, args.iterations, amp=amp, ctx=ctx)
            s = r["seconds_per_iteration"]
            what = f"train, {len(ctx.split(','))} context(s), {'AMP bf16' if amp else 'fp32'}"
            print(f"{what:<34} {shape:<24} {args.batch:>5} {s:>8.2f} {args.batch / s:>8.2f} "
                  f"{r['peak_rss_gib']:>7.2f} GiB", flush=True)
    paths = synthetic_paths(128)
    for workers in (1, 2, 4):
        rate = measure(paths, workers, 16, 12)
        what = f"loader, {workers} decoding thread(s)"
        print(f"{what:<34} {'128px strip->' + shape:<24} {16:>5} {16 / rate:>8.3f} {rate:>8.1f} {'':>9}", flush=True)


if __name__ == "__main__":
    import warnings
    warnings.filterwarnings("ignore")
    main()
