"""The VGAN networks (docs/original.md §1-2): a two-stream generator and a 3-D discriminator.

Default sizes are the original's (z 100-d, 32 frames of 64x64, 64 base channels). Widths, frame count
and frame size are arguments so tests can run tiny models; frames and size must be multiples of 16
because both networks keep the original's four stride-2 stages and only the first (generator) / last
(discriminator) kernel adapts: (frames/16, size/16, size/16), i.e. (2, 4, 4) at full size.
"""
import numpy as np
from mxnet import init as mx_init
from mxnet.gluon import nn

from ..config import check_temporal_padding, check_upsampling
from ..errors import SettingError
from .layers import (
    D_BN_EPS,
    G_BN_EPS,
    BatchNorm3D,
    Coarsen2D,
    DenseTransposedConvolution,
    PhaseTransposedConvolution,
    ResizeConvolution,
    batchnorm2d,
    conv3d,
    conv3d_transpose,
    conv_kwargs,
    phase_conv3d,
    phase_conv3d_transpose,
    resize_conv3d,
)

N_STAGES = 4  # stride-2 stages in every stream

# How the generator's transposed convolutions are computed - the same function and parameters either way:
# "deconvolution": MXNet's Deconvolution (float32 under AMP, and not hybridized there: it fails in backward);
# "phases": every transposed convolution as a Convolution (layers.PhaseTransposedConvolution, the z
# projection as FullyConnected), so AMP runs all of G in bfloat16 and hybridized. precision.py chooses.
TRANSPOSED_FORMS = ("deconvolution", "phases")
# How D computes its stride-2 convolutions, the same function and parameters either way: "strided", the
# Convolution operator; "phases", a stride-1 convolution of the input's phases (layers.PhaseConvolution),
# whose backward passes oneDNN runs on direct kernels where the strided ones fall back to GEMM.
STRIDED_FORMS = ("strided", "phases")


def doubled(size):
    return tuple(2 * n for n in size)


def up3d(channels, in_channels, in_size, upsampling, form="deconvolution", temporal_padding="zeros", **kwargs):
    """One doubling stage of the 3-D stream as a list of blocks, and its output depth. ``in_size``: the
    input's (T, H, W). ``upsampling``: the original's 4x4x4 stride-2 transposed convolution ("transposed";
    computed in ``form``), or (a named deviation of the demo preset, docs/deviations.md) nearest-neighbour
    doubling followed by a 3x3x3 convolution ("resize"), which cannot draw the 2-pixel (and 2-frame)
    checkerboard a stride-2 kernel of size 4 draws (Odena, Dumoulin & Olah, Distill 2016).
    ``temporal_padding`` (resize only): what that convolution reads beyond the first and last frames
    (config.TEMPORAL_PADDINGS)."""
    if upsampling == "resize":
        return resize_conv3d(channels, in_channels, in_size, temporal_padding, **kwargs)
    if form == "phases":
        return phase_conv3d_transpose(channels, in_channels, in_size, **kwargs)
    return conv3d_transpose(channels, 4, 2, 1, in_channels, in_size[0], **kwargs)


def up2d(channels, in_channels, in_size, upsampling, form="deconvolution"):
    """One doubling stage of the 2-D stream as a list of blocks (as ``up3d``; ``in_size`` (H, W))."""
    if upsampling == "resize":
        return [ResizeConvolution(channels, in_channels, 2, in_size)]
    if form == "phases":
        return [PhaseTransposedConvolution(channels, in_channels, 2, in_size)]
    return [nn.Conv2DTranspose(channels, 4, 2, 1, **conv_kwargs(in_channels))]


def first_kernel(frames, size):
    """Kernel of the generator's first and the discriminator's last layer: (2, 4, 4) at 32x64x64."""
    factor = 2 ** N_STAGES
    if frames % factor or size % factor or frames < factor or size < factor:
        raise SettingError(f"frames and size must be positive multiples of {factor}; got frames={frames}, size={size}")
    return frames // factor, size // factor, size // factor


def foreground_stream(in_channels, channels, kernel, in_size=(1, 1, 1), upsampling="transposed",
                      form="deconvolution", temporal_padding="zeros"):
    """3-D up-sampling stream (main.lua:77-92): TransposedConv3D + BN + ReLU per entry of ``channels``;
    the first layer uses ``kernel``/stride 1/pad 0 on an input of ``in_size`` (T, H, W), the rest double
    the resolution (``up3d``). Ends with the fused 4-channel head (3 video channels + 1 mask channel).
    Layers whose convolution side has 2 frames get the PadFrames / KeepFrames workaround (see layers.py)."""
    stream = nn.HybridSequential(prefix="foreground_")
    size = tuple(n + k - 1 for n, k in zip(in_size, kernel))      # stride 1, padding 0
    with stream.name_scope():
        for i, ch in enumerate(channels):
            if i == 0:
                if form == "phases" and tuple(in_size) == (1, 1, 1):     # z -> the first map: a dense layer
                    blocks = [DenseTransposedConvolution(ch, in_channels, kernel)]
                else:
                    blocks, _ = conv3d_transpose(ch, kernel, 1, 0, in_channels, in_size[0])
            else:
                blocks, _ = up3d(ch, in_channels, size, upsampling, form, temporal_padding)
                size = doubled(size)
            stream.add(*blocks, BatchNorm3D(G_BN_EPS, ch), nn.Activation("relu"))
            in_channels = ch
        blocks, _ = up3d(4, in_channels, size, upsampling, form, temporal_padding, prefix="video_mask_head_")
        stream.add(*blocks)
    return stream


def background_stream(in_channels, channels, first_kernel_size, first_stride=1, first_pad=0,
                      upsampling="transposed", form="deconvolution", in_size=(1, 1), coarse=None):
    """2-D up-sampling stream (main.lua:64-75): TransposedConv2D + BN + ReLU per entry (the first with
    ``first_kernel_size``, the rest doubling the resolution, ``up2d``), then a 3-channel doubling + tanh.
    ``in_size``: the input's (H, W). ``coarse`` (a deviation; None: the original): the scene ends as
    ``coarse`` x ``coarse`` control points, bilinearly stretched to the frame (layers.Coarsen2D)."""
    stream = nn.HybridSequential(prefix="background_")
    kernel = first_kernel_size if isinstance(first_kernel_size, tuple) else (first_kernel_size,) * 2
    size = tuple((n - 1) * first_stride - 2 * first_pad + k for n, k in zip(in_size, kernel))
    with stream.name_scope():
        for i, ch in enumerate(channels):
            if i == 0:
                if form == "phases" and (first_stride, first_pad, tuple(in_size)) == (1, 0, (1, 1)):
                    layers = [DenseTransposedConvolution(ch, in_channels, kernel)]
                else:
                    layers = [nn.Conv2DTranspose(ch, kernel, first_stride, first_pad, **conv_kwargs(in_channels))]
            else:
                layers = up2d(ch, in_channels, size, upsampling, form)
                size = doubled(size)
            stream.add(*layers, batchnorm2d(G_BN_EPS, ch), nn.Activation("relu"))
            in_channels = ch
        stream.add(*up2d(3, in_channels, size, upsampling, form), nn.Activation("tanh"))
        size = doubled(size)
        if coarse and coarse != size[0]:
            stream.add(Coarsen2D(3, size[0], coarse))
    return stream


def start_mask_at(foreground, bias):
    """The fused head's mask channel starts with ``bias`` (the mask at sigmoid(bias) everywhere) instead of
    the original's zero; its video channels keep zero. Only the initial value: the parameter and its name are
    the same, so checkpoints do not change."""
    (head_bias,) = foreground.collect_params(".*video_mask_head_bias").values()
    head_bias.init = mx_init.Constant(np.array([0.0, 0.0, 0.0, bias], np.float32))


def split_head(F, head):
    """Fused head output (N, 4, T, H, W) -> foreground f = tanh(ch 0..2), mask m = sigmoid(ch 3).
    Activation, not F.tanh / F.sigmoid: the same functions (to float32's last bit or one unit in it) on
    oneDNN's vectorised kernels, where F.tanh's generic kernel took 124 ms forward and backward at batch 8
    against 11 ms (sigmoid 23 against 7; docs/performance.md)."""
    foreground = F.Activation(F.slice_axis(head, axis=1, begin=0, end=3), act_type="tanh")
    mask = F.Activation(F.slice_axis(head, axis=1, begin=3, end=4), act_type="sigmoid")
    return foreground, mask


def compose(F, foreground, mask, background, frames):
    """video = m * f + (1 - m) * b (main.lua:94-114): the mask (N,1,T,H,W) repeated over the 3 colours,
    the background (N,3,H,W) over the ``frames`` T. Repeated by concatenation, not broadcast: MXNet's
    broadcast_mul backward reduces over the repeated axis with a generic kernel, 3.7x the time of the
    same arithmetic on concatenated copies (whose backward is slices) - 10 % of a demo iteration."""
    mask = F.concat(mask, mask, mask, dim=1)
    background = F.concat(*([F.expand_dims(background, axis=2)] * frames), dim=2)
    return mask * foreground + (1 - mask) * background


class Generator(nn.HybridBlock):
    """Unconditional two-stream generator. ``G(z)`` returns ``(video, foreground, mask, background)``
    with shapes (N,3,T,S,S), (N,3,T,S,S), (N,1,T,S,S), (N,3,S,S)."""

    def __init__(self, nz=100, ngf=64, frames=32, size=64, upsampling="transposed", form="deconvolution",
                 temporal_padding="zeros", mask_bias=0.0, background_size=None, **kwargs):
        super().__init__(**kwargs)
        kt, kh, kw = first_kernel(frames, size)
        self.nz, self.frames, self.size = nz, frames, size
        self.upsampling = check_upsampling(upsampling)
        check_temporal_padding(temporal_padding, upsampling)
        if form not in TRANSPOSED_FORMS:
            raise SettingError(f"form must be one of {', '.join(TRANSPOSED_FORMS)}; got {form!r}")
        self.form = form
        widths = [ngf * 8, ngf * 4, ngf * 2, ngf]
        with self.name_scope():
            self.foreground = foreground_stream(nz, widths, (kt, kh, kw), upsampling=upsampling, form=form,
                                                temporal_padding=temporal_padding)
            self.background = background_stream(nz, widths, (kh, kw), upsampling=upsampling, form=form,
                                                coarse=background_size)
        if mask_bias:
            start_mask_at(self.foreground, mask_bias)

    def hybrid_forward(self, F, z):
        head = self.foreground(F.reshape(z, shape=(0, 0, 1, 1, 1)))   # View(-1,100,1,1,1)
        background = self.background(F.reshape(z, shape=(0, 0, 1, 1)))  # View(-1,100,1,1)
        foreground, mask = split_head(F, head)
        return compose(F, foreground, mask, background, self.frames), foreground, mask, background


class Discriminator(nn.HybridBlock):
    """3-D discriminator (main.lua:116-127): Conv3D(4,2,1) stages with LeakyReLU(0.2), BN (eps 1e-3) on
    all but the first, then a (frames/16, size/16, size/16) convolution to 2 logits (real=0, fake=1).
    ``form`` (STRIDED_FORMS) says how the stride-2 stages are computed: the same function either way."""

    def __init__(self, ndf=64, frames=32, size=64, classes=2, minibatch_std=False, form="strided", **kwargs):
        super().__init__(**kwargs)
        if form not in STRIDED_FORMS:
            raise SettingError(f"form must be one of {', '.join(STRIDED_FORMS)}; got {form!r}")
        kernel = first_kernel(frames, size)
        self.minibatch_std, self.form = minibatch_std, form
        with self.name_scope():
            self.features = nn.HybridSequential(prefix="features_")
            with self.features.name_scope():
                in_channels, in_size = 3, (frames, size, size)
                for i, ch in enumerate([ndf, ndf * 2, ndf * 4, ndf * 8]):
                    if form == "phases":
                        blocks, _ = phase_conv3d(ch, in_channels, in_size)
                    else:
                        blocks, _ = conv3d(ch, 4, 2, 1, in_channels, in_size[0])
                    in_size = tuple(n // 2 for n in in_size)
                    self.features.add(*blocks)
                    if i > 0:
                        self.features.add(BatchNorm3D(D_BN_EPS, ch))
                    self.features.add(nn.LeakyReLU(0.2))
                    in_channels = ch
            self.classifier = nn.Conv3D(classes, kernel, 1, 0, prefix="classifier_",
                                        **conv_kwargs(in_channels + int(minibatch_std)))

    def hybrid_forward(self, F, video):
        features = self.features(video)
        if self.minibatch_std:
            features = with_batch_spread(F, features)
        return F.flatten(self.classifier(features))  # View(2):setNumInputDims(4) -> (N, 2)


def with_batch_spread(F, features):
    """``features`` (N, C, T, H, W) with one more channel holding, everywhere, the mean over C, T, H, W of
    the features' standard deviation across the batch: a deviation (``--minibatch-std``, docs/deviations.md)
    that lets D see how alike the clips of a batch are, so a G that makes one clip for every z loses
    (Karras et al., ICLR 2018, section 3). Batches of 1 get 0."""
    centred = F.broadcast_sub(features, F.mean(features, axis=0, keepdims=True))
    spread = F.mean(F.sqrt(F.mean(F.square(centred), axis=0) + 1e-8))
    plane = F.slice_axis(features, axis=1, begin=0, end=1)
    return F.concat(features, F.broadcast_like(F.reshape(spread, shape=(1, 1, 1, 1, 1)), plane), dim=1)
