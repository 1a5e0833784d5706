"""The machine the package runs on: numpy and ONNX compatibility for MXNet 1.9.1 (compat.py), the
CPU's features and oneDNN's AMX kernels (cpu.py), threads (threads.py), GPUs (gpu_support.py), which of
oneDNN's kernels a run computes on (kernels.py), device contexts (context.py), mixed precision and which
form of each network runs fastest here (precision.py) and ``tinyvideo-mx doctor`` (doctor.py). Nothing
here imports MXNet at import time but context.py: the package's __init__ configures the first four
before MXNet loads."""
