"""Which of oneDNN's kernels a run computes on: the fastest this CPU has, or AVX2's on every CPU.

oneDNN picks its kernels by the CPU's instruction sets, and kernels of another set sum in another order:
the same demo run draws other samples on an AMD EPYC with AVX-512 than on one with AVX2 only, and a
different draw can miss where another meets (docs/learning.md, "One draw on every CPU kind"). Held to
its AVX2 kernels (``DNNL_MAX_CPU_ISA=AVX2``), oneDNN computes the same numbers on both: README command 1
wrote one table digit for digit on each. So a configuration names its kernels (``TrainConfig.kernels``):
"native", the fastest (the default), or "avx2", AVX2's wherever they run (the demo preset, whose README
table is then every AMD user's; it trains about 1.6 times slower on an AVX-512 CPU, docs/performance.md).

Two more things order the sums, and a run cannot set them (``demo_draw`` tells whether this machine draws the
README's table). oneDNN sizes its kernels' blocks by the caches, and MXNet 1.9.1's oneDNN reads them from the
CPU only on Intel CPUs (CPUID leaf 4); on every other CPU it takes the same guesses (32 KiB, 512 KiB, 1 MiB).
And MXNet's OpenBLAS, which takes two small products of a demo step (the resize layers' phase kernels, the
clips' mean frames), picks its kernels by the CPU when libmxnet loads: Haswell's and Zen's sum alike, and
on a CPU it does not know (the Intel Xeon with AMX) it falls back to Prescott's, which sum otherwise. So an
Intel Xeon draws another table than the AMD EPYCs (docs/learning.md, twenty-second study).

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
CACHES_READ_ON = "GenuineIntel"            # the one CPU maker whose caches MXNet 1.9.1's oneDNN reads
TABLE_BLAS_CORES = ("Haswell", "Zen")      # OpenBLAS kernels that sum as on the CPUs that wrote the README's table
TABLE_THREADS = "2"                        # the README's table's OMP_NUM_THREADS
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


def blas_core():
    """The name of the kernels MXNet's OpenBLAS took for this CPU when libmxnet loaded ("Haswell",
    "SkylakeX", ...; ``OPENBLAS_CORETYPE`` chooses them if set then), or None where MXNet has no OpenBLAS
    of its own."""
    import ctypes

    import mxnet as mx
    try:    # the library libmxnet loaded: loading it again hands back the same one
        library = ctypes.CDLL(os.path.join(os.path.dirname(mx.__file__), "libopenblas.so.0"))
        corename = library.openblas_get_corename
    except (OSError, AttributeError):
        return None
    corename.restype = ctypes.c_char_p
    return corename().decode()


def demo_draw(vendor, flags, core, threads):
    """Why a run on AVX2's kernels (the demo) draws another table than the README's on a machine: a list of
    reasons, empty where it draws that table. ``vendor``: the CPU's maker (``cpu.read_maker_and_flags``), ``flags``
    its flags (None where the system does not describe its CPU: the reasons then name only what is known),
    ``core``: MXNet's OpenBLAS kernels (``blas_core``), ``threads``: OMP_NUM_THREADS."""
    reasons = []
    if flags is not None and "avx2" not in flags:
        reasons.append("this CPU has no AVX2")
    if vendor == CACHES_READ_ON:
        reasons.append("oneDNN sizes its blocks by this Intel CPU's own caches (it guesses them alike on every "
                       "other CPU)")
    if core not in TABLE_BLAS_CORES:
        reasons.append(f"MXNet's OpenBLAS runs its {core or 'unknown'} kernels (the table's: "
                       f"{' or '.join(TABLE_BLAS_CORES)})")
    if threads != TABLE_THREADS:
        reasons.append(f"OMP_NUM_THREADS is {threads or 'unset'} (the table's: {TABLE_THREADS})")
    return reasons
