"""The line every benchmark prints first: what it ran on."""
import os


def describe():
    import tinyvideo_mx  # noqa: F401  (first: it sets MXNet's thread count, as the CLI does, before mxnet loads)
    import mxnet as mx
    from tinyvideo_mx.precision import cpu_supports_bfloat16
    return (f"device: CPU ({os.cpu_count()} cores), MXNet {mx.__version__} (oneDNN on), bfloat16 in hardware: "
            f"{cpu_supports_bfloat16()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
