"""How many threads MXNet's operators use, decided before MXNet is loaded.

MXNet 1.9.1 reads OMP_NUM_THREADS once, when libmxnet loads. Left unset, its CPU engine oversubscribes
the cores: on a 2-core machine a full-size training iteration took 4.7 s instead of 2.7 s with
OMP_NUM_THREADS=2 (bench/versus_pytorch.py runs both frameworks with the variable set). So the package
sets it to the cores this process may run on, unless the user chose a value.

It also keeps OpenMP to MXNet's engine thread. MXNet copies an array of 200,000 elements or more with an
OpenMP loop (``common::ParallelCopy``), also when the copy runs on the caller's thread: ``mx.nd.array``
of a batch and ``asnumpy`` of samples, on Python's main thread. OpenMP then keeps a second team of
threads for that thread, more threads than cores, and libgomp stops spinning at its barriers: every
operator of the engine's team then waits on the kernel to be woken. One such copy made every later
training step slower - the full-size step 1.21-1.24x, the demo's 1.65x - for the rest of the process
(docs/performance.md, "One OpenMP team"). So MXNET_CPU_PARALLEL_SIZE is set above any array's size
unless the user chose a value: copies are plain memcpy, and the only team is the engine's. Nothing else
is tuned: OMP_PROC_BIND, MXNET_CPU_WORKER_NTHREADS=2 and MXNET_ENGINE_TYPE=ThreadedEngine measured no
better or worse (docs/performance.md).
"""
import os
import sys


def usable_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:       # not Linux
        return os.cpu_count() or 1


# MXNet reads it as a 32-bit index in its pip builds: the largest one, above any array it can hold
SERIAL_COPIES = str(2 ** 31 - 1)


def configure():
    """Set OMP_NUM_THREADS and MXNET_CPU_PARALLEL_SIZE for MXNet where the user has not; returns
    OMP_NUM_THREADS's value in force. MXNet takes OMP_NUM_THREADS when it loads, so that one is left alone
    when mxnet was imported before tinyvideo_mx; it reads MXNET_CPU_PARALLEL_SIZE at its first large
    copy, so that one is set either way."""
    if "mxnet" not in sys.modules:
        os.environ.setdefault("OMP_NUM_THREADS", str(usable_cores()))
    os.environ.setdefault("MXNET_CPU_PARALLEL_SIZE", SERIAL_COPIES)
    return os.environ.get("OMP_NUM_THREADS")
