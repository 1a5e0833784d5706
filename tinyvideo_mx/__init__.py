"""tinyvideo-mx: Generating Videos with Scene Dynamics (VGAN, Vondrick et al., NIPS 2016) in MXNet Gluon.

Rooms: ``networks`` (G and D), ``conditional`` (image -> video), ``losses``, ``training`` (the loop),
``checkpoint``, ``sampling``, ``export``, ``data`` (strips, lists, DataIter, synthetic set), ``media``
(GIF/MP4/PNG), ``cli`` (the ``tinyvideo-mx`` command).
"""
import sys

from . import compat, cpu, gpu_support, threads

__version__ = "0.1.0"
compat.restore_aliases()   # before anything imports mxnet (see compat.py)
threads.configure()     # likewise (see threads.py)
AMX = cpu.enable_amx()  # likewise: oneDNN decides its kernels once, when libmxnet loads (see cpu.py)
_INSTALL_PROBLEM = gpu_support.install_problem()
if _INSTALL_PROBLEM:    # said once, in one line; `tinyvideo-mx doctor` says more
    sys.stderr.write(f"tinyvideo-mx: {_INSTALL_PROBLEM}\n")
