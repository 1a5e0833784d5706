"""tinyvideo-mx: Generating Videos with Scene Dynamics (VGAN, Vondrick et al., NIPS 2016) in MXNet Gluon.

Rooms, in the order a clip travels: ``data`` (strips, lists, the DataIter, the built-in set, input
images), ``models`` (layers, G and D, the image-to-video model, building them), ``training`` (the D and
G steps and their losses, the loop, a run's state, what it watches, the weight average, replicas and the
launcher, the scalar log), ``checkpoint``, ``generation`` (inference, sampling,
media files, export, Torch7 import), ``metrics`` (statistics, FVD/IS, evaluation, the report),
``serving`` (the request contract, HTTP, MMS); ``runtime`` (the machine: compatibility, CPU, threads,
GPUs, mixed precision and the networks' fastest forms, doctor) and ``cli`` (the ``tinyvideo-mx`` command).
"""
import sys

from .runtime import compat, cpu, gpu_support, threads

__version__ = "0.1.0"
compat.restore_aliases()   # before anything imports mxnet (see compat.py)
threads.configure()     # likewise (see threads.py)
AMX = cpu.enable_amx()  # likewise: oneDNN decides its kernels once, when libmxnet loads (see cpu.py)
_INSTALL_PROBLEM = gpu_support.install_problem()
if _INSTALL_PROBLEM:    # said once, in one line; `tinyvideo-mx doctor` says more
    sys.stderr.write(f"tinyvideo-mx: {_INSTALL_PROBLEM}\n")
