"""Mixed precision on CPU: does AMP (bfloat16) speed up a full training iteration, and does training
still converge on the synthetic data?

    python bench/amp.py [--batch 8] [--iterations 3] [--train-iterations 1000]

Speed: full size (3x32x64x64, ngf = ndf = 64), one process per mode, after one warm-up iteration.
Convergence: the demo preset trained from the same seed in both modes; reported are the losses averaged
over the last 100 iterations, and statistics of 64 samples against 64 real clips: mean mask, mean
absolute frame-to-frame change (motion), per-channel mean/std distance.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from machine import describe  # noqa: E402  (bench/ is the script's folder)
from train_step import run_in_subprocess  # noqa: E402


def clip_statistics(videos):
    """videos: (N, 3, T, S, S) in [-1, 1]."""
    import numpy as np
    motion = float(np.abs(np.diff(videos, axis=2)).mean())
    return motion, videos.mean(axis=(0, 2, 3, 4)), videos.std(axis=(0, 2, 3, 4))


def converge(amp, iterations, run_dir):
    code = (f"import sys; sys.path[:0] = [{os.path.dirname(HERE)!r}]; import warnings; warnings.filterwarnings('ignore');"
            f"from tinyvideo_mx.config import make_config; from tinyvideo_mx.training import GanTraining;"
            f"GanTraining(make_config('demo', iterations={iterations}, amp={amp}, sample_every=0), {run_dir!r}, "
            "progress=False).run()")
    subprocess.run([sys.executable, "-c", code], check=True)
    import numpy as np

    from tinyvideo_mx.data import read_list
    from tinyvideo_mx.data.iterator import StripIter
    from tinyvideo_mx.data.sources import resolve_data_list
    from tinyvideo_mx.generation.inference import latents, load_generator, run_generator
    rows = [json.loads(line) for line in open(os.path.join(run_dir, "metrics.jsonl"))]
    last = [r for r in rows if r["iteration"] > iterations - 100]
    losses = {k: float(np.mean([r[k] for r in last])) for k in ("loss_d", "loss_g_adv", "mask_mean")}
    G, cfg = load_generator(run_dir)
    out = run_generator(G, latents(12345, 64, cfg.nz))
    real_iter = StripIter(read_list(resolve_data_list(cfg)), 64, frames=cfg.frames, size=cfg.size, seed=99)
    real = real_iter.next().data[0].asnumpy()
    real_iter.close()
    (m_fake, mu_f, sd_f), (m_real, mu_r, sd_r) = clip_statistics(out["video"]), clip_statistics(real)
    return dict(losses, sample_mask=float(out["mask"].mean()), motion_fake=m_fake, motion_real=m_real,
                moment_gap=float(np.abs(mu_f - mu_r).mean() + np.abs(sd_f - sd_r).mean()))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--train-iterations", type=int, default=1000)
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args()
    print(describe())
    if not args.skip_speed:
        print(f"speed: full size 3x32x64x64, ngf=ndf=64, batch {args.batch}, G step reuse")
        base = None
        for amp in (False, True):
            r = run_in_subprocess(args.batch, args.iterations, amp=amp)
            s = r["seconds_per_iteration"]
            base = base or s
            print(f"  {'AMP bf16' if amp else 'fp32':>8}: {s:.2f} s/iter, {args.batch / s:.2f} clips/s, "
                  f"x{base / s:.2f}, peak RSS {r['peak_rss_gib']:.2f} GiB", flush=True)
    print(f"convergence: demo preset (16x32x32, widths 16, batch 16), {args.train_iterations} iterations, seed 0")
    print(f"  {'mode':>8} {'loss_d':>7} {'loss_g':>7} {'mask':>6} {'smp mask':>8} {'motion':>7} {'real mot':>8} "
          f"{'moment gap':>10}")
    for amp in (False, True):
        r = converge(amp, args.train_iterations, tempfile.mkdtemp(prefix="amp-bench-"))
        print(f"  {'AMP bf16' if amp else 'fp32':>8} {r['loss_d']:>7.3f} {r['loss_g_adv']:>7.3f} {r['mask_mean']:>6.3f} "
              f"{r['sample_mask']:>8.3f} {r['motion_fake']:>7.4f} {r['motion_real']:>8.4f} {r['moment_gap']:>10.4f}", flush=True)


if __name__ == "__main__":
    import warnings
    warnings.filterwarnings("ignore")
    main()
