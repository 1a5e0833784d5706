"""Building blocks shared by every VGAN network, and the oneDNN workarounds they need.

MXNet 1.9.1's CPU wheel always runs convolutions through oneDNN (3-D transposed convolution exists
*only* there), and oneDNN in that release has bugs that plain VGAN code hits in backward. The blocks
here are the validated remedies (see docs/deviations.md and the MXNet notes):

* ``BatchNorm3D`` - BatchNorm over a 5-D tensor computed on a 4-D copy. A 5-D BatchNorm after a 3-D
  convolution with >= 8 channels fails in backward (``Check failed: !is_view``, apache/mxnet#20858),
  and a plain reshape wrapper segfaults intermittently inside oneDNN JIT code; the ``* 1`` copies stop both.
  The statistics and parameters are exactly those of ``nn.BatchNorm`` on the 5-D input.
* 1-channel transposed-conv heads fail in backward, so the networks fuse the 3-channel video head and
  the 1-channel mask head into one 4-channel layer (same parameter count, same init distribution).
* z is projected with a (transposed) convolution on a 1x1(x1) map, as the original does, never with
  Dense -> reshape (that fails in backward when hybridized).
* ``PadFrames`` / ``KeepFrames`` - found here: oneDNN computes a *wrong weight gradient* (silently, 5 to
  170 % relative error, forward and input gradient exact) for a 3-D convolution whose convolution-side
  depth is 2: a Conv3DTranspose reading 2 frames (the full-size generator's 512->256 layer, the
  conditional one's 1024->512) or a Conv3D producing 2 frames (the discriminator's 256->512 layer),
  at >= 16 input channels; only the last temporal kernel tap is affected. Depths 1, 3 and 4 and all 2-D
  layers are exact. Appending zero frames so that side has depth 3, and dropping the extra output
  frames, gives the identical function and exact gradients (tests/test_onednn_workarounds.py) at +50 %
  cost for that one layer.
"""
from mxnet import init as mx_init
from mxnet.gluon import nn

# Torch's BatchNormalization momentum 0.1 updates running = 0.9 * running + 0.1 * batch; Gluon's
# ``momentum`` is the weight of the *old* value, so the same rule is momentum=0.9.
TORCH_BN_MOMENTUM = 0.9
G_BN_EPS = 1e-5   # Torch default, used by every generator stream (main.lua:67-86)
D_BN_EPS = 1e-3   # main.lua:121-125 and the conditional encoder

CONV_WEIGHT_STD = 0.01   # main.lua:130-144: N(0, 0.01) for every (transposed) convolution
BN_GAMMA_STD = 0.02      # BN weight N(1, 0.02), bias 0


class GammaNormal(mx_init.Initializer):
    """BN gamma ~ N(1, sigma), as ``m.weight:normal(1.0, 0.02)`` in main.lua."""

    def __init__(self, sigma=BN_GAMMA_STD):
        super().__init__(sigma=sigma)
        self.sigma = sigma

    def _init_weight(self, _, arr):
        mx_init.random.normal(1.0, self.sigma, out=arr)


def conv_kwargs(in_channels=0):
    """Initialisers of every (transposed) convolution: weight N(0, 0.01), bias 0."""
    return dict(in_channels=in_channels, weight_initializer=mx_init.Normal(CONV_WEIGHT_STD), bias_initializer="zeros", use_bias=True)


def batchnorm_kwargs(eps, channels=0):
    return dict(in_channels=channels, momentum=TORCH_BN_MOMENTUM, epsilon=eps, gamma_initializer=GammaNormal(),
                beta_initializer="zeros", running_mean_initializer="zeros", running_variance_initializer="ones")


class BatchNorm3D(nn.HybridBlock):
    """BatchNorm over axis 1 of (N, C, T, H, W), computed on an (N, C, T*H, W) copy (oneDNN workaround)."""

    def __init__(self, eps, channels=0, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.bn = nn.BatchNorm(**batchnorm_kwargs(eps, channels))

    def hybrid_forward(self, F, x):
        # The copies (`* 1`) are essential: without them oneDNN segfaults intermittently (MXNet notes, bug 4).
        # -1 rather than -3 so the ONNX exporter accepts the reshape.
        y = self.bn(F.reshape(x * 1, shape=(0, 0, -1, 0)))
        return F.reshape_like(y, x) * 1


def needs_depth_padding(conv_side_depth):
    """True where oneDNN's 3-D backward-weights is wrong: a convolution-side depth of exactly 2."""
    return conv_side_depth == 2


class PadFrames(nn.HybridBlock):
    """Append ``frames`` zero frames along T (axis 2) of (N, C, T, H, W)."""

    def __init__(self, frames, **kwargs):
        super().__init__(**kwargs)
        self.frames = frames

    def hybrid_forward(self, F, x):
        return F.pad(x, mode="constant", constant_value=0, pad_width=(0, 0, 0, 0, 0, self.frames, 0, 0, 0, 0))


class KeepFrames(nn.HybridBlock):
    """Keep the first ``frames`` frames along T (axis 2)."""

    def __init__(self, frames, **kwargs):
        super().__init__(**kwargs)
        self.frames = frames

    def hybrid_forward(self, F, x):
        return F.slice_axis(x, axis=2, begin=0, end=self.frames)


def _depth_safe(layer, conv_side_depth, pad_frames, out_depth):
    """``layer`` alone, or between PadFrames / KeepFrames where its convolution side has depth 2."""
    if needs_depth_padding(conv_side_depth):
        return [PadFrames(pad_frames), layer, KeepFrames(out_depth)]
    return [layer]


def conv3d_transpose(channels, kernel, stride, pad, in_channels, in_depth, **kwargs):
    """A Conv3DTranspose as a list of blocks (with the depth-2 workaround where it applies), and its
    output depth. Its convolution side is its input; one more input frame adds ``stride`` output frames."""
    kt = kernel[0] if isinstance(kernel, tuple) else kernel
    out_depth = (in_depth - 1) * stride - 2 * pad + kt
    layer = nn.Conv3DTranspose(channels, kernel, stride, pad, **conv_kwargs(in_channels), **kwargs)
    return _depth_safe(layer, in_depth, 1, out_depth), out_depth


def conv3d(channels, kernel, stride, pad, in_channels, in_depth, **kwargs):
    """A Conv3D as a list of blocks (with the depth-2 workaround where it applies), and its output depth.
    Its convolution side is its output; one more output frame needs ``stride`` more input frames."""
    kt = kernel[0] if isinstance(kernel, tuple) else kernel
    out_depth = (in_depth + 2 * pad - kt) // stride + 1
    layer = nn.Conv3D(channels, kernel, stride, pad, **conv_kwargs(in_channels), **kwargs)
    return _depth_safe(layer, out_depth, stride, out_depth), out_depth


def batchnorm2d(eps, channels=0):
    return nn.BatchNorm(**batchnorm_kwargs(eps, channels))


def count_trainable(block):
    """Number of trained parameters (Torch's count: running mean/var are buffers, not parameters)."""
    return sum(int(p.data().size) for p in block.collect_params().values() if p.grad_req != "null")
