"""``tinyvideo-mx doctor``: one screen telling what this machine can run, and why not where it cannot."""
import os
import platform
import sys

from . import cpu, gpu_support, kernels, memory, precision
from .threads import SERIAL_COPIES, usable_cores

ORIGINAL_WIDTH = 64      # ngf = ndf = 64 in the original (docs/original.md, §1 and §2)

CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def cpu_description(cpuinfo=cpu.CPUINFO):
    """(model name, {flag: present}) from /proc/cpuinfo (empty on other systems)."""
    model, flags = cpu.read_cpuinfo(cpuinfo)
    return model, ({flag: flag in flags for flag in CPU_FLAGS} if flags else {})


def mxnet_features():
    """(version, {feature: enabled}) of the MXNet that imports, or (None, error line)."""
    try:
        import mxnet as mx
        features = mx.runtime.Features()
        return mx.__version__, {name: features.is_enabled(name) for name in ("CUDA", "CUDNN", "MKLDNN", "OPENMP")}
    except Exception as e:           # a broken install is exactly what doctor must still report
        return None, f"import mxnet failed: {type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}"


def cpu_lines(cpuinfo="/proc/cpuinfo"):
    """The doctor's lines on the CPU: its flags, the bfloat16 path ``--amp`` takes, and the forms float32
    and bfloat16 training take for the networks (precision.py)."""
    lines = []
    model, flags = cpu_description(cpuinfo)
    lines.append(f"CPU        {model}; " + ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in flags.items()))
    cpu_flags = {k for k, v in flags.items() if v}
    path = cpu.bfloat16_path(cpu_flags)
    bf16_state = {"AMX": "available, on AMX (oneDNN avx512_core_amx_bf16 kernels)",
                  "AVX512-BF16": "available, on AVX512-BF16 (oneDNN avx512_core_bf16 kernels; no AMX here"
                                 + (f": {cpu.amx_decision}" if flags.get("amx_bf16") else "") + ")",
                  None: "not available (needs avx512_bf16 or amx_bf16)"}[path]
    lines.append(f"           --amp on CPU (bfloat16): {bf16_state}")
    direct = cpu.direct_strided_backward(cpu_flags)
    g_form = precision.generator_form("auto", None, cpu_flags, "cpu", ORIGINAL_WIDTH)
    d_form = precision.discriminator_form("auto", None, cpu_flags, "cpu", ORIGINAL_WIDTH)
    lines.append(f"           float32: G in {g_form} form, D in {d_form} form at the original's widths (g_form, "
                 f"d_form auto: strided backward passes {'on direct kernels' if direct else 'on GEMM without AVX-512'}; "
                 "docs/performance.md)")
    if path:
        by_forward = precision.data_gradient_by_forward("bfloat16", cpu_flags)
        lines.append(f"           G under --amp: {precision.generator_form('auto', 'bfloat16')} form (g_form auto"
                     + ("; its 3-D data gradients as forward convolutions: no AMX backward-data kernel"
                        if by_forward else "") + "; docs/performance.md)")
        if by_forward:
            lines.append("           D under --amp: its strided data gradients as float32 transposed convolutions "
                         "(faster than the bfloat16 kernel without AMX; docs/performance.md)")
    return lines


def draw_line(cpuinfo="/proc/cpuinfo"):
    """The doctor's line on whether the demo, on AVX2's kernels, draws the README's table on this machine
    (runtime/kernels.py): a user whose table differs learns whether to expect it. Where the system does not
    describe its CPU (no /proc/cpuinfo: not Linux), the line says it cannot tell, unless another reason
    settles it."""
    vendor, flags = cpu.read_maker_and_flags(cpuinfo)
    described = vendor is not None or bool(flags)
    reasons = kernels.demo_draw(vendor, flags if described else None, kernels.blas_core(),
                                os.environ.get("OMP_NUM_THREADS"))
    if reasons:
        return ("Draw       the demo (--kernels avx2) draws another table than the README's here (README, \"A run "
                "is a draw\"): " + "; ".join(reasons))
    if not described:
        return (f"Draw       cannot tell whether the demo (--kernels avx2) draws the README's table here: {cpuinfo} "
                "does not describe this CPU (its AVX2, and whose caches oneDNN reads)")
    return "Draw       the demo (--kernels avx2) draws the README's table here"


def report(gpus=None, distributions=None, cpuinfo="/proc/cpuinfo"):
    """The doctor's lines, and whether everything asked for can run (False if the install is broken)."""
    distributions = gpu_support.installed_mxnet() if distributions is None else distributions
    gpus = gpu_support.query_gpus() if gpus is None else gpus
    lines, healthy = [], True
    lines.append(f"Python     {platform.python_version()} ({sys.executable})")
    problem = gpu_support.install_problem(distributions)
    listed = ", ".join(f"{n} {v}" for n, v in distributions) or "none"
    lines.append(f"MXNet      installed: {listed}")
    if problem:
        lines.append(f"           PROBLEM: {problem}")
        healthy = False
    version, features = mxnet_features()
    if version is None:
        lines.append(f"           {features}")
        healthy = False
        features = {}
    else:
        shown = ", ".join(f"{('oneDNN' if k == 'MKLDNN' else k)} {'yes' if v else 'no'}" for k, v in features.items())
        lines.append(f"           imports as {version}: {shown}")
    lines += cpu_lines(cpuinfo)
    lines.append(f"Threads    {usable_cores()} usable cores; OMP_NUM_THREADS="
                 f"{os.environ.get('OMP_NUM_THREADS', 'unset')} (tinyvideo-mx sets it to the cores unless you do)")
    lines.append(f"           MXNET_CPU_PARALLEL_SIZE={os.environ.get('MXNET_CPU_PARALLEL_SIZE', 'unset')} (tinyvideo-mx "
                 f"sets it to {SERIAL_COPIES} unless you do: copies without OpenMP, one OpenMP team; docs/performance.md)")
    if version is not None:
        lines.append(draw_line(cpuinfo))
    lines.append(f"Memory     {memory.plan(os.environ)[1]} (runtime/memory.py)")
    cuda_build = bool(features.get("CUDA")) or any(gpu_support.is_cuda_distribution(n) for n, _ in distributions)
    if not gpus:
        lines.append("GPUs       none found (no nvidia-smi, or it lists none): train on CPU (--ctx cpu)")
    for gpu in gpus:
        supported, reason = gpu_support.capability_verdict(gpu.capability)
        if supported and not cuda_build:
            verdict = f"not usable with this install: {reason}, but MXNet here is a CPU build " \
                      f"(pip uninstall -y mxnet && pip install 'tinyvideo-mx[gpu]')"
        else:
            verdict = ("usable: " if supported else "NOT usable: ") + reason
        lines.append(f"GPU {gpu.index}      {gpu.name} ({gpu.memory or 'memory unknown'}): {verdict}")
    return lines, healthy
