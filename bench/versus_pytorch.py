"""tinyvideo-mx against a PyTorch VGAN (bench/torch_vgan.py) on this machine, in one run.

    pip install torch==2.13.0          # benchmark-only; never a dependency of the package
    python bench/versus_pytorch.py --batch 8 16 --iterations 3 --rounds 2
    git worktree add /tmp/before COMMIT && python bench/versus_pytorch.py --before /tmp/before   # + an old version

Full size (3 x 32 x 64 x 64 clips, z 100, ngf = ndf = 64). Every measurement runs in a fresh process
(its own peak RSS; AMP is process-wide) with the same thread count for both frameworks
(OMP_NUM_THREADS and torch.set_num_threads), and the two frameworks alternate, round after round, so a
machine that slows down during the run slows both. The table shows each row's best round (the
round least disturbed by other load on a shared machine).
tinyvideo-mx's training keeps the memory it frees (tinyvideo_mx/runtime/memory.py); ``--torch-kept``
adds PyTorch given the same three malloc settings through the environment (MALLOC_MMAP_MAX_=0
MALLOC_ARENA_MAX=1 MALLOC_TOP_PAD_=1073741824), for a comparison on equal malloc terms.
fp32 compares plain float32; bf16 compares tinyvideo-mx ``--amp`` with ``torch.autocast(bfloat16)``.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.environ.get("TINYVIDEO_MX_ROOT", os.path.dirname(HERE))]
from machine import SHELL_ENVIRONMENT  # noqa: E402  (before anything imports tinyvideo_mx)

# memory.SETTINGS as glibc's environment variables: what --torch-kept gives PyTorch
KEPT_MEMORY_ENVIRONMENT = {"MALLOC_MMAP_MAX_": "0", "MALLOC_ARENA_MAX": "1", "MALLOC_TOP_PAD_": str(1 << 30)}


def default_threads():
    return len(os.sched_getaffinity(0))


def torch_available():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def time_mxnet(batch, iterations, bf16, g_step, preset="original", warmup=1):
    """Seconds per training step (bench/train_step.run_one)."""
    from train_step import run_one
    return run_one(batch, True, iterations, amp=bf16, g_step=g_step, preset=preset,
                   warmup=warmup)["seconds_per_iteration"]


def time_torch(batch, iterations, bf16, threads, warmup=1):
    import torch
    from torch_vgan import Training
    torch.set_num_threads(threads)
    run = Training(batch, bf16=bf16)
    real = torch.rand(batch, 3, 32, 64, 64) * 2 - 1
    z = torch.randn(batch, 100)
    for _ in range(warmup):
        run.step(real, z)
    start = time.perf_counter()
    for _ in range(iterations):
        run.step(real, z)
    return (time.perf_counter() - start) / iterations


def worker(args):
    if args.worker == "mxnet":
        seconds = time_mxnet(args.batch[0], args.iterations, args.bf16, args.g_step, args.preset, args.warmup)
    else:
        seconds = time_torch(args.batch[0], args.iterations, args.bf16, args.threads, args.warmup)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
    print(json.dumps({"seconds": seconds, "peak_rss_gib": rss}))


def measure(framework, batch, bf16, args):
    """One measurement in a fresh process. "before" is another checkout of tinyvideo-mx (--before), run
    as it ran then: OMP_NUM_THREADS as in this shell (the old package did not set it)."""
    env = dict(SHELL_ENVIRONMENT)
    if framework == "before":
        env["TINYVIDEO_MX_ROOT"] = os.path.abspath(args.before)
        framework = "mxnet"
    elif framework == "torch-kept":
        env.update(KEPT_MEMORY_ENVIRONMENT, OMP_NUM_THREADS=str(args.threads))
        framework = "torch"
    elif framework == "torch" or args.threads != default_threads():
        env["OMP_NUM_THREADS"] = str(args.threads)     # tinyvideo-mx sets its own default
    preset = "demo" if batch == "demo" else "original"
    iterations = args.demo_iterations if preset == "demo" else args.iterations
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", framework, "--batch", "0" if preset == "demo" else
           str(batch), "--iterations", str(iterations), "--threads", str(args.threads), "--g-step", args.g_step,
           "--preset", preset, "--warmup", str(args.warmup)]
    if bf16:
        cmd.append("--bf16")
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode:
        raise SystemExit(f"{framework} batch {batch} bf16={bf16} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--iterations", type=int, default=3, help="timed iterations per measurement")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds; the table shows the best")
    parser.add_argument("--warmup", type=int, default=3,
                        help="untimed iterations first (both frameworks): the heap grows over the first two or three "
                             "full-size steps; 1 until 2026-12-06")
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--before", metavar="CHECKOUT",
                        help="also time an earlier tinyvideo-mx checkout (git worktree add /tmp/before COMMIT)")
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument("--g-step", default="reuse", choices=["reuse", "recompute"],
                        help="tinyvideo-mx's G step (reuse = the original's, the default)")
    parser.add_argument("--demo-iterations", type=int, default=100,
                        help="also time the demo preset (the README's first run) over this many iterations; 0: skip")
    parser.add_argument("--torch-kept", action="store_true",
                        help="also time PyTorch with glibc keeping freed memory, as tinyvideo-mx's training does")
    parser.add_argument("--worker", choices=["mxnet", "torch"], help=argparse.SUPPRESS)
    parser.add_argument("--preset", default="original", help=argparse.SUPPRESS)
    parser.add_argument("--bf16", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    if not torch_available():
        print("PyTorch is not installed; this benchmark needs it (benchmark-only, never a package dependency):\n"
              "    pip install torch==2.13.0")
        return 0
    import torch
    from machine import describe

    from tinyvideo_mx.runtime.precision import cpu_supports_bfloat16
    print(describe())
    if "bf16" in args.precision and not cpu_supports_bfloat16():
        # tinyvideo-mx refuses --amp here; PyTorch's autocast runs, emulated
        print("bf16 rows skipped: this CPU has no bfloat16 arithmetic (avx512_bf16 or amx_bf16), so tinyvideo-mx "
              "refuses --amp and PyTorch's autocast emulates it (more than 4 minutes per batch-8 step, measured "
              "on an AMD EPYC without AVX-512); compare fp32")
        args.precision = [p for p in args.precision if p != "bf16"]
    print(f"PyTorch {torch.__version__}, threads {args.threads} for both; shapes: clips 3x32x64x64, z 100, "
          f"ngf = ndf = 64; tinyvideo-mx G step: {args.g_step}; {args.iterations} timed iterations after {args.warmup} warm-up, "
          f"best of {args.rounds} alternating rounds")
    rows = [(b, p) for p in args.precision for b in args.batch]
    frameworks = ("mxnet", "torch") + (("torch-kept",) if args.torch_kept else ()) + (("before",) if args.before else ())
    times = {(fw, b, p): [] for b, p in rows for fw in frameworks}
    rss = {}
    for r in range(args.rounds):
        for b, p in rows:
            for fw in (frameworks if r % 2 == 0 else frameworks[::-1]):
                m = measure(fw, b, p == "bf16", args)
                times[(fw, b, p)].append(m["seconds"])
                rss[(fw, b, p)] = max(rss.get((fw, b, p), 0), m["peak_rss_gib"])
                print(f"  round {r + 1}: {fw:10} batch {b:2} {p}: {m['seconds']:.2f} s/iteration", flush=True)
    kept = f" | {'PyTorch kept clips/s':>20} {'ratio':>5}" if args.torch_kept else ""
    before = f" | {'before clips/s':>14} {'ratio':>5}" if args.before else ""
    if args.demo_iterations:
        demo = {fw: [] for fw in frameworks if not fw.startswith("torch")}
        for r in range(args.rounds):
            for fw in (demo if r % 2 == 0 else list(demo)[::-1]):
                demo[fw].append(measure(fw, "demo", False, args)["seconds"])
                print(f"  round {r + 1}: {fw:6} demo preset: {demo[fw][-1]:.3f} s/iteration", flush=True)
    print(f"\n{'precision':>9} {'batch':>5} | {'tinyvideo-mx clips/s':>20} {'RSS GiB':>7} | "
          f"{'PyTorch clips/s':>15} {'RSS GiB':>7} | {'ratio':>5}{kept}{before}")
    for b, p in rows:
        mx_s = min(times[("mxnet", b, p)])
        th_s = min(times[("torch", b, p)])
        line = (f"{p:>9} {b:>5} | {b / mx_s:>20.2f} {rss[('mxnet', b, p)]:>7.2f} | {b / th_s:>15.2f} "
                f"{rss[('torch', b, p)]:>7.2f} | {th_s / mx_s:>5.2f}x")
        if args.torch_kept:
            kept_s = min(times[("torch-kept", b, p)])
            line += f" | {b / kept_s:>20.2f} {kept_s / mx_s:>5.2f}x"
        if args.before:
            old_s = min(times[("before", b, p)])
            line += f" | {b / old_s:>14.2f} {th_s / old_s:>5.2f}x"
        print(line)
    print("ratio = PyTorch seconds per iteration / tinyvideo-mx seconds per iteration (> 1: tinyvideo-mx faster)"
          + ("; before's ratio: PyTorch / the earlier checkout" if args.before else ""))
    if args.demo_iterations:
        line = f"demo preset (the README's first run: batch 16 of 3x16x32x32 clips, ngf = ndf = 16): " \
               f"{1 / min(demo['mxnet']):.2f} iterations/s"
        if args.before:
            line += f"; before: {1 / min(demo['before']):.2f} iterations/s"
        print(line)
    return 0


if __name__ == "__main__":
    import warnings
    warnings.filterwarnings("ignore")
    sys.exit(main())
