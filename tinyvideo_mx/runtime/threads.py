"""How many threads MXNet's operators use, decided before MXNet is loaded.

MXNet 1.9.1 reads OMP_NUM_THREADS once, when libmxnet loads. Left unset, its CPU engine oversubscribes
the cores: on a 2-core machine a full-size training iteration took 4.7 s instead of 2.7 s with
OMP_NUM_THREADS=2 (bench/versus_pytorch.py runs both frameworks with the variable set). So the package
sets it to the cores this process may run on, unless the user chose a value. Nothing else is tuned:
OMP_PROC_BIND, MXNET_CPU_WORKER_NTHREADS=2 and MXNET_ENGINE_TYPE=ThreadedEngine measured no better or
worse (docs/performance.md).
"""
import os
import sys


def usable_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:       # not Linux
        return os.cpu_count() or 1


def configure():
    """Set OMP_NUM_THREADS for MXNet if the user has not; returns the value in force. A no-op (and the
    value is whatever MXNet already took) when mxnet was imported before tinyvideo_mx."""
    if "mxnet" not in sys.modules:
        os.environ.setdefault("OMP_NUM_THREADS", str(usable_cores()))
    return os.environ.get("OMP_NUM_THREADS")
