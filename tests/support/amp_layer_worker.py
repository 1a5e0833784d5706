"""Run in its own process by tests/test_precision.py (AMP rewrites MXNet's operators process-wide): the
phase-form transposed convolution, the resize-convolution and D's strided convolution, hybridized under
bfloat16 AMP, against the float64 reference; with ``--data-gradient-by-forward``, their data gradients
computed as a forward convolution or, for the strided one, a float32 transposed one (data_gradient.py)."""
import json
import os
import sys
import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)
# the support package lives in tests/, this script's parent folder
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# tinyvideo_mx before MXNet and OpenCV (it configures them as they load): not sorted
# isort: off
import tinyvideo_mx         # noqa: E402, F401  (first: numpy aliases, threads, AMX before MXNet loads)
import numpy as np          # noqa: E402
from mxnet.contrib import amp  # noqa: E402
# isort: on

from tinyvideo_mx.models import data_gradient  # noqa: E402
from tinyvideo_mx.models.layers import PhaseTransposedConvolution, ResizeConvolution, conv3d  # noqa: E402

from support import reference_conv  # noqa: E402
from support.gradients import gradient_errors  # noqa: E402


def main():
    amp.init(target_dtype="bfloat16")
    if "--data-gradient-by-forward" in sys.argv:
        data_gradient.enable()
    rng = np.random.default_rng(7)
    errors = {}
    for depth in (1, 2, 3):      # 1: the extra-frame path
        x = rng.standard_normal((2, 32, depth, 4, 4))
        errors[f"3d depth {depth}"] = gradient_errors([PhaseTransposedConvolution(16, 32, 3, (depth, 4, 4))],
                                                      reference_conv.conv3d_transpose, x, 2, 1, hybridize=True)
    x = rng.standard_normal((2, 32, 4, 6))
    errors["2d"] = gradient_errors([PhaseTransposedConvolution(16, 32, 2, (4, 6))], reference_conv.conv2d_transpose,
                                   x, 2, 1, hybridize=True)
    # the resize-convolution shares the interleave (and, at depth 1, the extra frame)
    for depth, padding in ((1, "zeros"), (3, "replicate")):
        x = rng.standard_normal((2, 32, depth, 4, 4))
        errors[f"resize 3d depth {depth}"] = gradient_errors(
            [ResizeConvolution(16, 32, 3, (depth, 4, 4), padding)],
            lambda x, w, stride, pad, replicate=padding == "replicate": reference_conv.resize_conv(x, w, replicate),
            x, None, None, hybridize=True)
    # D's strided convolution with the remedy, its data gradient as a float32 transposed convolution (the
    # remedy's cast hands the reference float32; at input depth 4 inside the depth-2 workaround)
    for depth in ((4, 8) if "--data-gradient-by-forward" in sys.argv else ()):
        x = rng.standard_normal((2, 16, depth, 4, 6))
        errors[f"strided 3d depth {depth}"] = gradient_errors(conv3d(32, 4, 2, 1, 16, depth)[0], reference_conv.conv3d,
                                                              x, 2, 1, hybridize=True)
    print(json.dumps({k: [float(e) for e in v] for k, v in errors.items()}))


if __name__ == "__main__":
    main()
