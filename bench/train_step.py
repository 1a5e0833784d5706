"""Training speed at full size (3 x 32 x 64 x 64 clips): iterations/s, clips/s, peak memory, and the
effective GFLOP/s against this machine's SGEMM rate measured in the same run.

    python bench/train_step.py --batch 8 16 --iterations 3

Each (batch, mode) runs in its own process so peak RSS is its own. "Model FLOPs" count one iteration
of the original's algorithm: G forward + backward (3 F_G), D forward on real and fake (2 F_D), their
backward (2 x 2 F_D) and the G step's backward through D (2 F_D); a multiply-add is 2 FLOPs. Work the
depth-2 workaround adds is not counted (it is overhead, not model work).
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

# the checkout to measure: this one, or another one's (bench/versus_pytorch.py --before)
sys.path.insert(0, os.environ.get("TINYVIDEO_MX_ROOT", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from machine import describe  # noqa: E402  (bench/ is the script's folder)

import tinyvideo_mx  # noqa: E402, F401  (before MXNet loads: numpy aliases, thread count, AMX)


def conv_macs(block, x_shape, y_shape):
    kind = type(block).__name__
    w = block.weight.shape
    kernel = 1
    for k in w[2:]:
        kernel *= k
    if "Transpose" in kind:        # every input position scatters C_in x C_out x kernel
        positions = 1
        for s in x_shape[2:]:
            positions *= s
        return x_shape[0] * positions * w[0] * w[1] * kernel
    positions = 1
    for s in y_shape[2:]:
        positions *= s
    return y_shape[0] * positions * w[0] * w[1] * kernel


def forward_macs(net, x):
    """Multiply-adds of one forward pass, from the shapes each convolution sees (imperative hooks)."""
    total = []

    def hook(block, inputs, output):
        total.append(conv_macs(block, inputs[0].shape, output.shape))
    for block in _convs(net):
        block.register_forward_hook(hook)
    net(x)
    return sum(total)


def _convs(block):
    out = []
    for child in block._children.values():
        if type(child).__name__ in ("Conv3D", "StridedConv3D", "Conv3DTranspose", "Conv2D", "Conv2DTranspose"):
            out.append(child)
        out += _convs(child)
    return out


def sgemm_gflops(n=2048, repeats=5):
    import mxnet as mx
    a = mx.nd.random.uniform(shape=(n, n))
    b = mx.nd.random.uniform(shape=(n, n))
    mx.nd.dot(a, b).wait_to_read()
    start = time.perf_counter()
    for _ in range(repeats):
        c = mx.nd.dot(a, b)
    c.wait_to_read()
    return 2 * n ** 3 * repeats / (time.perf_counter() - start) / 1e9


class RandomClips:
    """Stands in for the data iterator: the step is measured, not the loader (bench/loader.py). Each
    ``batch`` is a new NDArray copied from numpy on the caller's thread, as ``StripIter.next`` makes it:
    that copy once slowed every later step (docs/performance.md, "One OpenMP team"), and a bench that
    made its batch on the engine did not see it."""
    batches_per_epoch = 1000

    def __init__(self, batch):
        import numpy as np
        self.clips = np.random.default_rng(0).uniform(-1, 1, (batch, 3, 32, 64, 64)).astype(np.float32)

    @property
    def batch(self):
        import mxnet as mx
        return mx.nd.array(self.clips)

    def state_dict(self):
        return {"next_batch": 0, "bad": {}}

    def close(self):
        pass


def run_one(batch, hybridize, iterations, amp=False, ctx="cpu", g_step="reuse", preset="original", g_form="auto",
            d_form="auto", warmup=1, kernels=None):
    """Seconds per training step after ``warmup`` warm-up steps, and peak RSS. ``preset="original"``: full size on
    random clips (the step, not the loader, is measured); ``preset="demo"``: the README's first run on
    its real data iterator (``batch`` is the preset's), on the preset's oneDNN kernels or ``kernels``."""
    import tempfile

    import mxnet as mx

    from tinyvideo_mx.config import make_config
    from tinyvideo_mx.training import GanTraining
    if preset == "demo":
        chosen = {"kernels": kernels} if kernels else {}     # an earlier checkout (--before) may not know them
        run = GanTraining(make_config("demo", sample_every=0, **chosen), tempfile.mkdtemp(prefix="bench-"),
                          progress=False)
        next_batch = run.next_batch
    else:
        # forms only when asked for: an earlier checkout (--before) may not know them
        forms = {k: v for k, v in (("g_form", g_form), ("d_form", d_form)) if v != "auto"}
        cfg = make_config(preset, batch_size=batch, hybridize=hybridize, iterations=iterations + warmup, amp=amp, ctx=ctx,
                          g_step=g_step, **forms)
        run = GanTraining(cfg, tempfile.mkdtemp(prefix="bench-"), progress=False, iterator=RandomClips(batch))
        next_batch = lambda: run.data.batch  # noqa: E731
    for _ in range(warmup):                     # graph building, oneDNN primitive creation, the heap's growth
        run.step(next_batch())
    mx.nd.waitall()
    start = time.perf_counter()
    for _ in range(iterations):
        run.step(next_batch())
    mx.nd.waitall()
    seconds = (time.perf_counter() - start) / iterations
    return {"seconds_per_iteration": seconds, "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20}


def run_in_subprocess(batch, iterations, hybridize=True, **options):
    """``run_one`` in a fresh process (its own peak RSS; AMP and oneDNN's kernels are process-wide);
    ``options``: run_one's other keywords (amp, ctx, preset, kernels, warmup...)."""
    code = (f"import sys, json, warnings; sys.path[:0] = [{os.path.dirname(os.path.abspath(__file__))!r}];"
            f"warnings.filterwarnings('ignore'); from train_step import run_one;"
            f"print(json.dumps(run_one({batch}, {hybridize}, {iterations}, **{options!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def model_flops(batch):
    import mxnet as mx

    from tinyvideo_mx.models.factory import prepare
    from tinyvideo_mx.models.networks import Discriminator, Generator
    G = prepare(Generator(), [mx.cpu()], hybridize=False)
    D = prepare(Discriminator(), [mx.cpu()], hybridize=False)
    f_g = forward_macs(G, mx.nd.zeros((batch, 100))) * 2
    f_d = forward_macs(D, mx.nd.zeros((batch, 3, 32, 64, 64))) * 2
    return 3 * f_g + 8 * f_d, f_g, f_d


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--modes", nargs="+", default=["hybridized", "imperative"])
    args = parser.parse_args()
    gemm = sgemm_gflops()
    print(describe())
    print(f"SGEMM 2048x2048 (mx.nd.dot): {gemm:.1f} GFLOP/s")
    print("shape: clips 3x32x64x64, z 100, ngf = ndf = 64 (the original); G step: reuse (original)")
    print(f"{'batch':>5} {'mode':>11} {'s/iter':>8} {'iter/s':>7} {'clips/s':>8} {'GFLOP/s':>8} {'% SGEMM':>8} {'peak RSS':>9}")
    for batch in args.batch:
        flops, _, _ = model_flops(batch)
        for mode in args.modes:
            r = run_in_subprocess(batch, args.iterations, hybridize=mode == "hybridized")
            s = r["seconds_per_iteration"]
            gflops = flops / s / 1e9
            print(f"{batch:>5} {mode:>11} {s:>8.2f} {1 / s:>7.3f} {batch / s:>8.2f} {gflops:>8.1f} {100 * gflops / gemm:>7.0f}% "
                  f"{r['peak_rss_gib']:>7.2f} GiB", flush=True)
        print(f"      model FLOPs per iteration at batch {batch}: {flops / 1e9:.1f} GFLOP")


if __name__ == "__main__":
    import warnings
    warnings.filterwarnings("ignore")
    main()
