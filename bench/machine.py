"""The line every benchmark prints first: what it ran on; and the environment the shell gave it."""
import os

# The shell's environment, as it was before anything imported tinyvideo_mx (which sets MXNet's variables
# in os.environ where the user has not). Import this module before tinyvideo_mx and start workers and
# servers from it, so an older checkout (--before) runs with the defaults it had, not this one's.
SHELL_ENVIRONMENT = dict(os.environ)


def describe():
    import tinyvideo_mx  # noqa: F401, I001  (first: it sets MXNet's thread count, as the CLI does, before mxnet loads)
    import mxnet as mx
    from tinyvideo_mx.runtime import cpu
    model, flags = cpu.read_cpuinfo()
    return (f"device: CPU {model} ({os.cpu_count()} cores), MXNet {mx.__version__} (oneDNN on), bfloat16 "
            f"kernels: {cpu.bfloat16_path(flags) or 'none'} ({cpu.amx_decision}), "
            f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
