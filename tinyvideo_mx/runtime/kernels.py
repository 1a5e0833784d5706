"""Which of oneDNN's kernels a run computes on: the fastest this CPU has, or AVX2's on every CPU.

oneDNN picks its kernels by the CPU's instruction sets, and kernels of another set sum in another order:
the same demo run draws other samples on an AMD EPYC with AVX-512 than on one with AVX2 only, and a
different draw can miss where another meets (docs/learning.md, "One draw on every CPU kind"). Held to
its AVX2 kernels (``DNNL_MAX_CPU_ISA=AVX2``), oneDNN computes the same numbers on both: README command 1
wrote one table digit for digit on each. So a configuration names its kernels (``TrainConfig.kernels``):
"native", the fastest (the default), or "avx2", AVX2's wherever they run (the demo preset, whose README
table is then every user's; it trains about 1.6 times slower on an AVX-512 CPU, docs/performance.md).

oneDNN reads the variable once, when a process creates its first primitive, and keeps it for the
process's life. So ``use`` sets it, creates that first primitive at once (a convolution of a few
numbers) and puts the variable back as it was: processes started later (a test's, `launch`'s workers)
choose for themselves. A Python script that runs MXNet operators of its own before building a network from a
configuration has fixed oneDNN's kernels already; ``use`` cannot tell, so such a script exports
``DNNL_MAX_CPU_ISA=AVX2`` itself. The thread count orders sums too (README): the draw is the same for the
same number of threads.
"""
import logging
import os

from ..config import KERNELS
from ..errors import SettingError
from . import cpu

log = logging.getLogger(__name__)
ISA_OF = {"avx2": "AVX2"}                  # kernels -> the DNNL_MAX_CPU_ISA that holds oneDNN to them
BEYOND_AVX2 = ("avx512", "amx")            # flags of the instruction sets AVX2's kernels leave unused
_in_force = None     # the kernels of this process's first network: oneDNN keeps them for the process's life


def use(kernels):
    """Let the networks of this process compute on ``kernels`` (``KERNELS``). The first call decides; a
    later call that asks for other kernels gets the first ones, with one warning. Returns those in force."""
    global _in_force
    if kernels not in KERNELS:
        raise SettingError(f"kernels must be one of {KERNELS}, got {kernels!r}")
    if _in_force is None:
        if kernels != "native":
            _hold_to(kernels)
        _in_force = kernels
    elif kernels != _in_force:
        log.warning("this run asks for oneDNN's %s kernels, but this process computes on the %s kernels of "
                    "its first network (oneDNN keeps them for a process's life): run it in a process of its "
                    "own for the samples the %s kernels draw", kernels, _in_force, kernels)
    return _in_force


def in_force():
    """The kernels this process computes on, or None before its first network."""
    return _in_force


def flags_in_force(flags=None):
    """``flags`` if given (a CPU's, as tests pass), else this machine's /proc/cpuinfo flags less those of
    the instruction sets its kernels leave unused: how fast each form of a network runs depends on them
    (runtime/precision.py)."""
    if flags is not None:
        return flags
    flags = cpu.flags_or_this_machine(None)
    if _in_force == "avx2":
        return {flag for flag in flags if not flag.startswith(BEYOND_AVX2)}
    return flags


def _hold_to(kernels):
    """Make this process's first oneDNN primitive while ``DNNL_MAX_CPU_ISA`` names ``kernels``' set."""
    import mxnet as mx
    model, flags = cpu.read_cpuinfo()
    if flags and kernels not in flags:
        log.warning("this CPU (%s) has no %s: oneDNN computes on the kernels it has, and this run draws other "
                    "samples than on a CPU with %s", model, kernels.upper(), kernels.upper())
    before = os.environ.get(cpu.ISA_VARIABLE)
    os.environ[cpu.ISA_VARIABLE] = ISA_OF[kernels]
    try:
        ones = mx.nd.ones((1, 8, 1, 2, 2), ctx=mx.cpu())
        mx.nd.Convolution(ones, mx.nd.ones((8, 8, 1, 1, 1), ctx=mx.cpu()), kernel=(1, 1, 1), num_filter=8,
                          no_bias=True).wait_to_read()
    finally:
        if before is None:
            del os.environ[cpu.ISA_VARIABLE]
        else:
            os.environ[cpu.ISA_VARIABLE] = before
