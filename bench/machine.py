"""The line every benchmark prints first: what it ran on."""
import os


def describe():
    import mxnet as mx

    import tinyvideo_mx  # noqa: F401  (first: it sets MXNet's thread count, as the CLI does, before mxnet loads)
    from tinyvideo_mx.runtime import cpu
    model, flags = cpu.read_cpuinfo()
    return (f"device: CPU {model} ({os.cpu_count()} cores), MXNet {mx.__version__} (oneDNN on), bfloat16 "
            f"kernels: {cpu.bfloat16_path(flags) or 'none'} ({cpu.amx_decision}), "
            f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
