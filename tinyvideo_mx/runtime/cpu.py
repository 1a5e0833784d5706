"""What this processor offers for bfloat16, and switching on oneDNN's AMX kernels before MXNet loads.

MXNet 1.9.1 bundles oneDNN 2.4.4. Its bfloat16 convolutions run on ``avx512_core_bf16`` by default, which
on an Intel Xeon with AMX is *slower* than float32 for VGAN's 3-D convolutions (docs/performance.md).
The same oneDNN also carries AMX bfloat16 kernels (``brgconv:avx512_core_amx_bf16``) but only uses them
when ``DNNL_MAX_CPU_ISA`` allows AMX - and since Linux 5.16 a process must first ask the kernel for the
AMX tile state (``arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)``), which that oneDNN predates:
allowing the ISA without asking kills the process with SIGILL at the first AMX instruction. So, on a
CPU with ``amx_bf16``, ``enable_amx`` asks for the permission and then allows the ISA - both before
libmxnet is loaded, because oneDNN reads the variable once. With AMX, bfloat16 forward convolutions run
about 3x and weight gradients 1.5x faster than float32; float32 runs the same kernels as before.
"""
import ctypes
import os
import platform
import sys

CPUINFO = "/proc/cpuinfo"
ISA_VARIABLE = "DNNL_MAX_CPU_ISA"
AMX_ISA = "AVX512_CORE_AMX"
_SYS_ARCH_PRCTL = 158            # x86-64 syscall number
_ARCH_REQ_XCOMP_PERM = 0x1023
_XFEATURE_XTILEDATA = 18
amx_decision = "not decided (tinyvideo_mx decides at import)"    # what enable_amx decided, for doctor


def _first_processor(path):
    """(the "key: value" fields, the set of flags) of the first processor in ``path``, or None where there is
    no such file (not Linux)."""
    try:
        with open(path) as f:
            text = f.read(1 << 20)     # one processor's entry is a few KiB; never read an endless file whole
    except OSError:
        return None
    fields, flags = {}, set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "flags":
            flags = flags or set(value.split())
        elif key and key not in fields:
            fields[key] = value.strip()
    return fields, flags


def read_cpuinfo(path=CPUINFO):
    """(model name, set of flags) of the first processor in ``path``; ("unknown", set()) where there is
    no such file (not Linux). The name carries the CPU's family and model numbers where the file gives
    them: a virtual machine's name can be as short as "AMD EPYC" for CPUs of different kinds (family 25
    model 1 has AVX2 only, model 17 AVX-512), and every speed figure names the kind it was measured on."""
    found = _first_processor(path)
    if found is None:
        return platform.processor() or "unknown", set()
    fields, flags = found
    model = fields.get("model name", "unknown")
    if "cpu family" in fields and "model" in fields:
        model += f" (family {fields['cpu family']}, model {fields['model']})"
    return model, flags


def read_maker_and_flags(path=CPUINFO):
    """(the CPU's maker as CPUID names it - "GenuineIntel", "AuthenticAMD" - or None where not named, set of
    flags) of the first processor in ``path``, from one read; (None, set()) where there is no such file."""
    found = _first_processor(path)
    return (found[0].get("vendor_id"), found[1]) if found else (None, set())


def flags_or_this_machine(flags):
    """``flags`` if given, else this machine's /proc/cpuinfo flags (callers take flags so tests can pass any CPU)."""
    return read_cpuinfo()[1] if flags is None else flags


def allows_amx(isa):
    """True if a DNNL_MAX_CPU_ISA value lets oneDNN use AMX."""
    return isa.upper().startswith(AMX_ISA)


def has_bfloat16(flags):
    """Native bfloat16 arithmetic: AVX512-BF16 or AMX-BF16."""
    return "avx512_bf16" in flags or "amx_bf16" in flags


def direct_strided_backward(flags):
    """True if MXNet 1.9.1's oneDNN runs strided 3-D convolutions' backward passes on direct kernels: with
    AVX-512. Without it (AVX2 only, ``DNNL_VERBOSE``) they fall back to im2col + GEMM (``gemm:jit``), 2-3
    times slower than the forward pass - as do Deconvolution's forward and weight gradient, so G's
    layers pay it in either form (docs/performance.md)."""
    return "avx512f" in flags


def request_amx_permission():
    """Ask Linux for the AMX tile state for this process; True if granted (or not needed: kernels before
    5.16 grant it to every process)."""
    if platform.machine() != "x86_64" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.syscall(_SYS_ARCH_PRCTL, _ARCH_REQ_XCOMP_PERM, _XFEATURE_XTILEDATA) == 0
    except (OSError, AttributeError):
        return False


def enable_amx(flags=None):
    """Let oneDNN use AMX where the CPU has it. Returns what was decided, as a short phrase for ``doctor``.
    Must run before ``import mxnet``; respects a ``DNNL_MAX_CPU_ISA`` the user set."""
    global amx_decision
    amx_decision = _decide_amx(flags_or_this_machine(flags))
    return amx_decision


def _decide_amx(flags):
    if "amx_bf16" not in flags:
        return "no AMX on this CPU"
    if ISA_VARIABLE in os.environ:
        # Set by the user - or inherited from a parent process that set it (a test runner, `launch`): a
        # process allowed AMX must ask for the tile state itself, whenever mxnet was imported, as long as
        # nothing has run on oneDNN yet; asking costs nothing when AMX is never used.
        value = os.environ[ISA_VARIABLE]
        if allows_amx(value) and not request_amx_permission():
            return f"{ISA_VARIABLE}={value}, but the kernel refused the AMX tile permission"
        return f"{ISA_VARIABLE}={value} set in the environment"
    if "mxnet" in sys.modules:
        return "mxnet was imported before tinyvideo_mx: AMX left off"
    if not request_amx_permission():
        return "the kernel refused the AMX tile permission: AMX left off"
    os.environ[ISA_VARIABLE] = AMX_ISA
    return "AMX on"


def amx_left_off(decision=None):
    """Why AMX stays off on a CPU that has it - the import order or the kernel's refusal - or None (AMX on,
    absent, or set by the user's own ``DNNL_MAX_CPU_ISA``). ``decision``: what ``enable_amx`` decided."""
    decision = amx_decision if decision is None else decision
    return decision if decision.endswith("AMX left off") or "refused" in decision else None


def bfloat16_path(flags, isa=None):
    """Which kernels bfloat16 convolutions run on in this process: "AMX", "AVX512-BF16" or None."""
    isa = os.environ.get(ISA_VARIABLE, "") if isa is None else isa
    if "amx_bf16" in flags and allows_amx(isa):
        return "AMX"
    if has_bfloat16(flags):
        return "AVX512-BF16"
    return None
