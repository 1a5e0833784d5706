"""Where one full-size training iteration spends its time, in tinyvideo-mx and in the PyTorch VGAN.

    python bench/profile_step.py --batch 8            # MXNet profiler, + torch.profiler if PyTorch is installed

Two tables per framework:
1. Operator kinds over one whole iteration (after a warm-up): convolution and transposed convolution
   (forward / backward), BatchNorm, the copies and reshapes of the 5-D BatchNorm workaround, the data
   movement of the phase forms and the depth-2 workaround, Adam, everything else, as time and share of
   the summed operator time. MXNet runs
   operators on several engine threads, so summed operator time can exceed the wall time (printed too).
   oneDNN layout reorders have no profiler entry of their own in MXNet 1.9.1: they are paid inside the
   operator that needs plain data (the workaround's copies and reshapes, the phase forms' clips, the
   broadcasts of the composition), which is why those rows are larger than their arithmetic.
2. Per layer, every (transposed) convolution alone at its training shape, hybridized as training runs
   it: forward, backward-data and backward-weights timed separately (autograd.grad with respect to the
   input or to the weights only), with the depth-2 workaround where tinyvideo-mx applies it.
"""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]

# (category, test on the operator name); first match wins.
MX_KINDS = [
    ("conv3d forward", lambda n: n == "Convolution"),
    ("conv3d backward (data + weights)", lambda n: n == "_backward_Convolution"),
    ("transposed conv forward", lambda n: n == "Deconvolution"),
    ("transposed conv backward (data + weights)", lambda n: n == "_backward_Deconvolution"),
    ("BatchNorm", lambda n: "BatchNorm" in n),
    ("BN3D copies + reshapes (oneDNN workaround; reorders inside)",
     lambda n: n in ("_mul_scalar", "_backward_mul_scalar", "Reshape", "_backward_reshape", "reshape_like",
                     "_backward_reshape_like", "_backward_copy")),
    ("data movement: phase forms, depth-2 workaround (pads, transposes, clips, gathers)",
     lambda n: n in ("Pad", "_backward_Pad", "transpose", "clip", "_backward_clip", "take", "_backward_take", "tile",
                     "_backward_tile", "slice", "_backward_slice")),
    ("composition m*f + (1-m)*b (broadcasts)", lambda n: "broadcast" in n or n in ("_rminus_scalar", "expand_dims")),
    ("Adam", lambda n: "adam" in n),
    ("gradient copies and sums", lambda n: n in ("add_n", "elemwise_add", "CopyCPU2CPU", "_copyto", "zeros_like",
                                                 "_zeros", "_zeros_without_dtype")),
]
TORCH_KINDS = [
    ("conv3d forward", lambda n: n in ("aten::mkldnn_convolution", "aten::_convolution") or n == "aten::convolution"),
    ("convolution backward (data + weights)", lambda n: n in ("aten::convolution_backward",)),
    ("BatchNorm", lambda n: "batch_norm" in n),
    ("Adam", lambda n: n.startswith("aten::_foreach") or "adam" in n.lower()),
]


def categorise(times, kinds):
    out = {}
    for name, ms in times.items():
        kind = next((k for k, test in kinds if test(name)), "everything else")
        out[kind] = out.get(kind, 0.0) + ms
    return out


def print_kinds(title, by_kind, wall_ms):
    total = sum(by_kind.values())
    print(f"\n{title}: wall time of the iteration {wall_ms:.0f} ms, summed operator time {total:.0f} ms")
    print(f"{'operator kind':<62} {'ms':>8} {'share':>6}")
    for kind, ms in sorted(by_kind.items(), key=lambda kv: -kv[1]):
        print(f"{kind:<62} {ms:>8.1f} {100 * ms / total:>5.1f}%")


# -- MXNet ------------------------------------------------------------------------------------------
def mxnet_iteration(batch, amp):
    import tinyvideo_mx  # noqa: F401, I001  (first: the thread count and copy threshold, set before mxnet loads)
    import tempfile

    import mxnet as mx
    from train_step import RandomClips
    from tinyvideo_mx.config import make_config
    from tinyvideo_mx.training import GanTraining
    cfg = make_config("original", batch_size=batch, iterations=10, amp=amp)
    run = GanTraining(cfg, tempfile.mkdtemp(prefix="bench-"), progress=False, iterator=RandomClips(batch))
    clips = run.data.batch
    for _ in range(2):
        run.step(clips)
    mx.nd.waitall()
    mx.profiler.set_config(profile_all=True, aggregate_stats=True,
                           filename=os.path.join(tempfile.mkdtemp(prefix="profile-"), "trace.json"))
    mx.profiler.set_state("run")
    start = time.perf_counter()
    run.step(clips)
    mx.nd.waitall()
    wall = (time.perf_counter() - start) * 1e3
    mx.profiler.set_state("stop")
    stats = json.loads(mx.profiler.dumps(format="json", reset=True))
    times = {name: v["Total"] for name, v in stats["Time"].get("operator", {}).items()}
    return wall, times


def mxnet_layers(batch, repeats, amp=False):
    """(rows, (G's form, D's form)): every (transposed) convolution of G and D alone, at its training input
    shape, in the forms full-size training takes on this CPU (the networks are built as training builds
    them, ``factory.build_networks``). ``amp``: under bfloat16 AMP (on in this process since
    ``mxnet_iteration``), G in the phase form, so its layers are the Convolutions that run in bfloat16."""
    import tinyvideo_mx  # noqa: F401, I001  (first, as in mxnet_iteration)
    import mxnet as mx
    from mxnet import autograd
    from tinyvideo_mx.config import make_config
    from tinyvideo_mx.models.factory import HYBRIDIZE_FLAGS, build_networks, prepare
    G, D = (prepare(net, [mx.cpu()], hybridize=False)
            for net in build_networks(make_config("original"), "bfloat16" if amp else None))
    shapes = []

    def remember(block, inputs, output):
        shapes.append((block, inputs[0].shape))
    convs = [b for b in _blocks(G) + _blocks(D) if type(b).__name__.startswith(("Conv", "StridedConv"))
             or type(b).__name__ in ("PhaseTransposedConvolution", "DenseTransposedConvolution", "PhaseConvolution")]
    handles = [b.register_forward_hook(remember) for b in convs]
    G(mx.nd.zeros((batch, 100)))
    D(mx.nd.zeros((batch, 3, 32, 64, 64)))
    for h in handles:
        h.detach()
    rows = []
    for block, shape in shapes:
        # hybridized, as training runs them: run imperatively, every reshape and transpose of the phase
        # forms is a call of its own, and in float32 their layers then measured 1.5-2x slower than the
        # original forms' where hybridized they are faster (docs/performance.md). Under AMP without
        # static_alloc, as this bench always did (run imperatively, some passes fail in oneDNN there)
        block.hybridize(**({} if amp else HYBRIDIZE_FLAGS))
        frozen = mx.nd.random.normal(shape=shape)      # no gradient: backward computes the weights' only
        x = frozen.copy()
        x.attach_grad()

        def forward(inputs):
            with autograd.record():
                return block(inputs)

        def weights_only():
            forward(frozen).backward(head)
        y = forward(x)
        # in y's type: under AMP ones_like is on the float32 list, and a float32 head for a bfloat16
        # output fails in oneDNN ("could not create a primitive descriptor iterator")
        head = mx.nd.amp_cast(mx.nd.ones(y.shape), dtype=y.dtype)
        timings = {}
        for what, run in (("forward", lambda: block(x)),
                          ("backward-data", lambda: autograd.grad(forward(x), [x], [head])),
                          ("backward-weights", weights_only)):
            run()
            mx.nd.waitall()
            start = time.perf_counter()
            for _ in range(repeats):
                out = run()
            mx.nd.waitall()
            del out
            timings[what] = (time.perf_counter() - start) / repeats * 1e3
        # backward rows include one forward (autograd needs the recorded graph): subtract it
        for what in ("backward-data", "backward-weights"):
            timings[what] = max(timings[what] - timings["forward"], 0.0)
        rows.append((block.name, type(block).__name__, shape, tuple(y.shape), timings))
    return rows, (G.form, D.form)


def _blocks(block):
    out = []
    for child in block._children.values():
        out.append(child)
        out += _blocks(child)
    return out


# -- PyTorch ----------------------------------------------------------------------------------------
def torch_iteration(batch, bf16, threads):
    import torch
    from torch.profiler import ProfilerActivity, profile
    from torch_vgan import Training
    torch.set_num_threads(threads)
    run = Training(batch, bf16=bf16)
    real = torch.rand(batch, 3, 32, 64, 64) * 2 - 1
    z = torch.randn(batch, 100)
    for _ in range(2):
        run.step(real, z)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        run.step(real, z)
        wall = (time.perf_counter() - start) * 1e3
    # self time per operator, so nested calls are not counted twice
    times = {e.key: e.self_cpu_time_total / 1e3 for e in prof.key_averages()}
    return wall, times


def torch_layers(batch, repeats, threads, bf16=False):
    import contextlib

    import torch
    from torch_vgan import Discriminator, Generator
    torch.set_num_threads(threads)
    G, D = Generator(), Discriminator()
    shapes = []
    convs = [m for m in list(G.modules()) + list(D.modules())
             if isinstance(m, (torch.nn.Conv3d, torch.nn.ConvTranspose3d, torch.nn.ConvTranspose2d))]
    handles = [m.register_forward_hook(lambda m, i, o: shapes.append((m, i[0].shape))) for m in convs]
    with torch.no_grad():
        G(torch.zeros(batch, 100))
        D(torch.zeros(batch, 3, 32, 64, 64))
    for h in handles:
        h.remove()
    rows = []

    def autocast():
        return torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()

    def forward(m, x):
        with autocast():
            return m(x)
    for m, shape in shapes:
        x = torch.randn(shape, requires_grad=True)
        timings = {}
        y = forward(m, x)
        head = torch.ones_like(y)
        params = [p for p in (m.weight, m.bias) if p is not None]
        for what, run in (("forward", lambda: forward(m, x)),
                          ("backward-data", lambda: torch.autograd.grad(forward(m, x), [x], head)),
                          ("backward-weights", lambda: torch.autograd.grad(forward(m, x), params, head))):
            run()
            start = time.perf_counter()
            for _ in range(repeats):
                run()
            timings[what] = (time.perf_counter() - start) / repeats * 1e3
        for what in ("backward-data", "backward-weights"):
            timings[what] = max(timings[what] - timings["forward"], 0.0)
        rows.append((type(m).__name__, tuple(shape), tuple(y.shape), timings))
    return merge_heads(rows)


def merge_heads(rows):
    """The PyTorch G has the original's two heads (3-channel video, 1-channel mask) reading the same
    input; tinyvideo-mx fuses them into one 4-channel layer. One row for both, so the tables align."""
    merged = []
    for row in rows:
        prev = merged[-1] if merged else None
        if prev and row[0] == prev[0] == "ConvTranspose3d" and row[1] == prev[1]:
            merged[-1] = (prev[0], prev[1], prev[2], {k: prev[3][k] + row[3][k] for k in row[3]})
        else:
            merged.append(row)
    return merged


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per layer measurement")
    parser.add_argument("--threads", type=int, default=None, help="default: the cores this process may use")
    parser.add_argument("--amp", action="store_true", help="tinyvideo-mx --amp / torch.autocast(bfloat16)")
    parser.add_argument("--skip-layers", action="store_true")
    args = parser.parse_args()
    import tinyvideo_mx  # noqa: F401
    from tinyvideo_mx.runtime.threads import usable_cores
    threads = args.threads or usable_cores()
    os.environ["OMP_NUM_THREADS"] = str(threads)
    from machine import describe
    print(describe())
    print(f"shapes: clips 3x32x64x64, z 100, ngf = ndf = 64; batch {args.batch}; threads {threads}; "
          f"precision {'bf16' if args.amp else 'fp32'}; G step: reuse (original)")
    wall, times = mxnet_iteration(args.batch, args.amp)
    print_kinds("tinyvideo-mx (MXNet profiler)", categorise(times, MX_KINDS), wall)
    try:
        import torch
    except ImportError:
        torch = None
        print("\nPyTorch is not installed (benchmark-only): pip install torch==2.13.0 for its columns")
    if torch is not None:
        wall, times = torch_iteration(args.batch, args.amp, threads)
        print_kinds(f"PyTorch {torch.__version__} (torch.profiler, self time)", categorise(times, TORCH_KINDS), wall)
    if args.skip_layers:
        return
    mx_rows, (g_form, d_form) = mxnet_layers(args.batch, args.repeats, args.amp)
    print(f"\nper layer, {'bf16 (--amp / autocast)' if args.amp else 'fp32'}, alone at its training shape (ms): "
          f"forward / backward-data / backward-weights; MXNet's G in {g_form} form, D in {d_form} form")
    th_rows = torch_layers(args.batch, args.repeats, threads, args.amp) if torch is not None else []
    print(f"{'layer':<40} {'input':>22} | {'MXNet fwd':>9} {'bwd-data':>8} {'bwd-w':>8} | "
          f"{'torch fwd':>9} {'bwd-data':>8} {'bwd-w':>8}")
    totals = [0.0] * 6
    for i, (name, kind, shape, _, t) in enumerate(mx_rows):
        mine = [t["forward"], t["backward-data"], t["backward-weights"]]
        theirs = [th_rows[i][3][k] for k in ("forward", "backward-data", "backward-weights")] if th_rows else [0] * 3
        totals = [a + b for a, b in zip(totals, mine + theirs)]
        print(f"{name:<40} {'x'.join(map(str, shape[1:])):>22} | {mine[0]:>9.1f} {mine[1]:>8.1f} {mine[2]:>8.1f} | "
              f"{theirs[0]:>9.1f} {theirs[1]:>8.1f} {theirs[2]:>8.1f}")
    print(f"{'total':<40} {'':>22} | {totals[0]:>9.1f} {totals[1]:>8.1f} {totals[2]:>8.1f} | "
          f"{totals[3]:>9.1f} {totals[4]:>8.1f} {totals[5]:>8.1f}")


if __name__ == "__main__":
    import warnings
    warnings.filterwarnings("ignore")
    main()
