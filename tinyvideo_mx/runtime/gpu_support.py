"""Which MXNet is installed and which GPUs it can run on - decided without importing MXNet.

MXNet 1.9.1's CUDA wheels (``mxnet-cu112``, ``mxnet-cu117``) carry compiled kernels (SASS) for compute
capabilities 5.0, 6.0, 7.0, 8.0 and 8.6 and no PTX, so no kernel can be compiled for anything newer.
CUDA runs a kernel built for X.y on a GPU of capability X.z with z >= y and never across major versions:
so 5.x-8.x GPUs run (8.9, Ada, on the 8.6 kernels - CUDA's rule, not tried here), 9.0 (Hopper) and later
fail at their first kernel with a cryptic CUDA error, and below 5.0 nothing was built. The checks here
turn that into one line before any network is built (``--ctx gpuN``) and into ``tinyvideo-mx doctor``.
"""
import importlib.metadata
import re
import shutil
import subprocess
from dataclasses import dataclass

from ..errors import SettingError

CPU_DISTRIBUTION = "mxnet"
GPU_DISTRIBUTION = "mxnet-cu112"        # the `gpu` extra
SASS_ARCHITECTURES = ((5, 0), (6, 0), (7, 0), (8, 0), (8, 6))   # what MXNet 1.9.1's CUDA wheels carry
_MXNET_NAME = re.compile(r"^mxnet(-cu\d+\w*|-mkl|-native)?$")


def installed_mxnet():
    """[(distribution, version)] of every MXNet distribution installed (all write the same mxnet/)."""
    found = {}
    for dist in importlib.metadata.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        if _MXNET_NAME.match(name):
            found[name] = dist.version
    return sorted(found.items())


def is_cuda_distribution(name):
    return name.startswith("mxnet-cu")


def install_problem(distributions=None):
    """One line describing a broken MXNet install (none, or several overwriting each other), or None."""
    distributions = installed_mxnet() if distributions is None else distributions
    if not distributions:
        return ("MXNet is not installed: pip install 'tinyvideo-mx[cpu]' (or '[gpu]' for CUDA; "
                "from a checkout: pip install -e '.[cpu]')")
    if len(distributions) > 1:
        names = " ".join(name for name, _ in distributions)
        listed = ", ".join(f"{name} {version}" for name, version in distributions)
        return (f"{len(distributions)} MXNet distributions are installed ({listed}) and overwrite each other's "
                f"files: pip uninstall -y {names}, then pip install 'tinyvideo-mx[gpu]' (CUDA) or '[cpu]'")
    return None


@dataclass
class Gpu:
    index: int
    name: str
    capability: tuple      # (major, minor)
    memory: str = ""


def query_gpus(timeout=10):
    """The GPUs ``nvidia-smi`` reports ([] when there is no nvidia-smi or it fails)."""
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=index,name,compute_cap,memory.total",
                              "--format=csv,noheader"], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return []
    gpus = []
    for line in out.stdout.splitlines() if out.returncode == 0 else []:
        fields = [f.strip() for f in line.split(",")]
        if len(fields) < 3 or not re.match(r"^\d+\.\d+$", fields[2]):
            continue
        major, minor = (int(x) for x in fields[2].split("."))
        gpus.append(Gpu(int(fields[0]), fields[1], (major, minor), fields[3] if len(fields) > 3 else ""))
    return gpus


def capability_verdict(capability):
    """(supported, reason) for a compute capability under MXNet 1.9.1's CUDA wheels."""
    major, minor = capability
    text = f"compute capability {major}.{minor}"
    same_major = [arch for arch in SASS_ARCHITECTURES if arch[0] == major and arch[1] <= minor]
    if same_major:
        built = max(same_major)
        how = "" if built == capability else f" (on its sm_{built[0]}{built[1]} kernels, CUDA's binary compatibility)"
        return True, f"{text}: supported by MXNet 1.9.1's CUDA wheels{how}"
    if capability > max(SASS_ARCHITECTURES):
        return False, (f"{text}: MXNet 1.9.1's CUDA wheels stop at 8.6 and carry no PTX; "
                       f"train on CPU or an Ampere-or-older GPU")
    return False, f"{text}: below 5.0, the oldest MXNet 1.9.1's CUDA wheels were built for; train on CPU"


def check_gpu_contexts(spec, gpus=None, distributions=None):
    """Raise SettingError (one line) if ``--ctx spec`` names a GPU this install cannot use: a GPU that
    is not there, a compute capability the wheels lack, or a CPU-only MXNet. Imports no MXNet."""
    wanted = sorted({int(m.group(1) or 0) for m in re.finditer(r"gpu(\d*)", str(spec).lower())})
    if not wanted:
        return
    gpus = query_gpus() if gpus is None else gpus
    by_index = {g.index: g for g in gpus}
    for index in wanted:
        gpu = by_index.get(index)
        if gpu is None and gpus:
            raise SettingError(f"--ctx gpu{index}: nvidia-smi lists GPUs {', '.join(str(i) for i in sorted(by_index))} "
                               f"only")
        if gpu is not None:
            supported, reason = capability_verdict(gpu.capability)
            if not supported:
                raise SettingError(f"--ctx gpu{index} ({gpu.name}): {reason}")
    distributions = installed_mxnet() if distributions is None else distributions
    if not any(is_cuda_distribution(name) for name, _ in distributions):
        raise SettingError(f"--ctx gpu{wanted[0]}: the installed MXNet is a CPU build "
                           f"({', '.join(n for n, _ in distributions) or 'none'}): pip uninstall -y mxnet, then "
                           f"pip install 'tinyvideo-mx[gpu]'")
    if not gpus:
        raise SettingError(f"--ctx gpu{wanted[0]}: no GPU found (nvidia-smi is missing or lists none)")
