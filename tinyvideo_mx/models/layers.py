"""Building blocks shared by every VGAN network, and the oneDNN workarounds they need.

MXNet 1.9.1's CPU wheel always runs convolutions through oneDNN (3-D transposed convolution exists
*only* there), and oneDNN in that release has bugs that plain VGAN code hits in backward. The blocks
here are the validated remedies (see docs/deviations.md and docs/platform.md):

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
import numpy as np
from mxnet import init as mx_init
from mxnet import nd as mx_nd
from mxnet.gluon import nn

from ..config import check_temporal_padding
from . import data_gradient
from .onednn_layout import amp_casts_convolution_outputs, plain_copy

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
    return dict(in_channels=in_channels, weight_initializer=mx_init.Normal(CONV_WEIGHT_STD), bias_initializer="zeros",
                use_bias=True)


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
        # The copies (`* 1`) are essential: without them oneDNN segfaults intermittently (docs/platform.md).
        # -1 rather than -3 so the ONNX exporter accepts the reshape.
        y = self.bn(F.reshape(x * 1, shape=(0, 0, -1, 0)))
        return F.reshape_like(y, x) * 1


# Nearest-neighbour doubling followed by a 3-tap convolution (zero padding 1) along one axis, split by
# output phase: output 2i reads x[i-1] with w[-1] and x[i] with w[0] + w[1]; output 2i+1 reads x[i] with
# w[-1] + w[0] and x[i+1] with w[1]. Rows: (phase 0, tap 0), (phase 0, tap 1), (phase 1, tap 0),
# (phase 1, tap 1); columns: w[-1], w[0], w[1]. Each phase is a 2-tap convolution at the input's resolution,
# so the layer costs about what a stride-2 transposed convolution with kernel 4 costs (the original's
# layer), a third of convolving the up-sampled tensor.
PHASE_TAPS = ((1, 0, 0), (0, 1, 1), (1, 1, 0), (0, 0, 1))


def phase_bits(index, ndim):
    """Per-axis phases (0/1) of flat phase ``index``, row-major (the last axis' phase varies fastest)."""
    return [(index >> (ndim - 1 - a)) & 1 for a in range(ndim)]


class GatherNotSaved:
    """Mixin for PhaseTransposedConvolution and ResizeConvolution: their ``gather`` constants (derived from
    the layer's shape) stay out of save/load_parameters, so a checkpoint is the same whichever form computed
    the layer, and however a later version computes it."""

    def _collect_params_with_prefix(self, prefix=""):
        return {name: p for name, p in super()._collect_params_with_prefix(prefix).items()
                if name.rsplit(".", 1)[-1] not in ("gather", "gather_back")}


def append_zero_frames(F, x, frames):
    """``frames`` zero frames appended along T (axis 2) of (N, C, T, H, W). A concatenation: oneDNN runs it
    (and its backward, a slice) at twice the speed of the generic Pad operator (docs/performance.md)."""
    zero_frame = F.zeros_like(F.slice_axis(x, axis=2, begin=0, end=1))
    return F.concat(x, *([zero_frame] * frames), dim=2)


def interleave_phases(F, phases, channels, conv_size, out_size):
    """Put the phases of a stride-2 up-sampling in place: ``phases`` (N, 2**k * C, *conv_size) holds
    the channel groups of every phase in *q order* (row-major over the axes, q = 1 - phase per axis),
    where phase p of an axis holds output 2i + p at position i + p. Returns
    (N, C, *out_size). Per axis, interleaving the q = 0 and q = 1 groups puts phase 1 at 2j - 1 and phase
    0 at 2j, shifted by one: so the output is that interleave cropped by one position at the start.

    Done one axis at a time (last first) with reshapes and one 4-D transpose each, then one crop of every
    axis: pure data movement, exact in every precision, and - unlike a fixed-kernel transposed
    convolution - it runs hybridized under AMP (a hybridized Deconvolution fails in backward there). 4-D,
    because MXNet 1.9.1 hands float32 transposes of at most 4 axes to oneDNN's reorder, which runs at the
    speed of a copy, and runs others through a generic kernel 5-20x slower; one crop at the end, because
    each crop is a copy forward and a zero-fill plus copy backward (docs/performance.md)."""
    k = len(conv_size)
    x, done = phases, 1      # done: the size of the axes already interleaved (trailing)
    if not amp_casts_convolution_outputs():
        # A float32 convolution's output is in oneDNN's blocked layout, and a hybridized graph reshapes it
        # as a view, which the oneDNN transpose cannot reorder (onednn_layout.py). Under AMP the cast to
        # float32 already writes plain layout.
        x = plain_copy(F, x)
    for a in reversed(range(k)):
        before = channels
        for size in conv_size[:a]:
            before *= size
        # (N * 2**a, q_a, C * S_0..S_{a-1} * S_a, done) -> (..., C * S_0..S_a, q_a, done): position j of
        # phase q lands at 2j + q
        x = F.reshape(x, shape=(-1, 2, before * conv_size[a], done))
        x = F.transpose(x, axes=(0, 2, 1, 3))
        done *= 2 * conv_size[a]
    x = F.reshape(x, shape=(-1, channels) + tuple(2 * n for n in conv_size))
    return F.slice(x, begin=(None, None) + (1,) * k, end=(None, None) + tuple(1 + n for n in out_size))


def resize_phase_matrix(ndim):
    """(3**ndim, 2**ndim * 2**ndim): row k (a 3x3(x3) tap, row-major) times column (q, t) (a phase in q
    order, ``interleave_phases``, and its 2x2(x2) tap, row-major) is what tap k contributes to that phase's
    tap t (PHASE_TAPS per axis, phase p = 1 - q): the weight (out * in, 3**ndim) times this matrix is every
    phase's kernel. Entries are 0 and 1: each phase tap sums whole taps, exactly in every precision."""
    matrix = np.ones((3,) * ndim + (2 ** ndim, 2 ** ndim), np.float32)
    for q_flat in range(2 ** ndim):
        for t_flat in range(2 ** ndim):
            for axis, (q, t) in enumerate(zip(phase_bits(q_flat, ndim), phase_bits(t_flat, ndim))):
                taps = np.array(PHASE_TAPS[2 * (1 - q) + t], np.float32)
                shape = [1] * ndim
                shape[axis] = 3
                matrix[..., q_flat, t_flat] *= taps.reshape(shape)
    return mx_nd.array(matrix.reshape(3 ** ndim, 4 ** ndim))


class ResizeConvolution(GatherNotSaved, nn.HybridBlock):
    """Nearest-neighbour up-sampling by 2 on every spatial axis followed by a 3x3(x3) convolution with
    padding 1 (``ndim`` 2 or 3): the "resize-convolution", which cannot draw the checkerboard of a free
    4-tap stride-2 kernel because every output phase gets the same total weight (Odena, Dumoulin & Olah,
    Distill 2016). Computed by phases (PHASE_TAPS): one 2x2(x2) convolution of the zero-padded input makes
    all 2**ndim phases as channel groups (their kernels: one product of the weight with a fixed 0/1
    matrix, ``resize_phase_matrix``), and ``interleave_phases`` puts them in place - about the cost of the
    original's layer, a third of convolving the up-sampled tensor. Weight layout (out, in, 3, ...), as a
    convolution's; initialised N(0, 0.01), bias 0, as every convolution of the original. ``in_size``: the
    input's spatial size; the layer applies the depth-2 workaround itself (``needs_depth_padding``).

    Why not the equivalent transposed convolution with a kernel computed from the weight: MXNet 1.9.1's
    oneDNN Deconvolution crashes in backward whenever its weight is an operator's output."""

    def __init__(self, channels, in_channels, ndim, in_size, temporal_padding="zeros", **kwargs):
        super().__init__(**kwargs)
        check_temporal_padding(temporal_padding, "resize")
        self.channels, self.in_channels, self.ndim = channels, in_channels, ndim
        self.in_size = tuple(in_size)
        # "replicate" (3-D only): the doubled input is extended along time by copies of its first and last
        # frames instead of zeros, so the end frames are computed from as much signal as the middle ones
        self.replicate_time = ndim == 3 and temporal_padding == "replicate"
        # the phase convolution writes in_depth + 1 frames; never let that be exactly 2 (see PadFrames)
        self.extra_frame = ndim == 3 and needs_depth_padding(self.in_size[0] + 1)
        self.conv_size = tuple(n + 1 for n in self.in_size)
        if self.extra_frame:
            self.conv_size = (self.conv_size[0] + 1,) + self.conv_size[1:]
        with self.name_scope():
            self.weight = self.params.get("weight", shape=(channels, in_channels) + (3,) * ndim,
                                          init=mx_init.Normal(CONV_WEIGHT_STD))
            self.bias = self.params.get("bias", shape=(channels,), init="zeros")
            self.gather = self.params.get_constant("gather", resize_phase_matrix(ndim))

    def phase_kernel(self, F, weight, gather):
        """(out, in, 3, ...) -> (2**ndim * out, in, 2, ...): every phase's 2-tap kernel, q order."""
        phases = 2 ** self.ndim
        kernel = F.dot(F.reshape(weight, shape=(-1, 3 ** self.ndim)), gather)    # (out * in, phase * taps)
        kernel = F.transpose(F.reshape(kernel, shape=(-1, phases, phases)), axes=(1, 0, 2))
        return F.reshape(kernel, shape=(phases * self.channels, self.in_channels) + (2,) * self.ndim)

    def hybrid_forward(self, F, x, weight, bias, gather):
        # pad 1 on both sides (and one more zero frame at the end where needed): the 2-tap convolution
        # then writes n + 1 positions per axis; output 2i of an axis is phase 0 at position i, output
        # 2i + 1 is phase 1 at position i + 1. The zeros are the convolution's own padding: a Pad
        # operator copies the input forward and backward (a tenth of a demo step).
        conv_pad = [1] * self.ndim
        if self.replicate_time:
            # Copying frame 0 (and frame n-1) of the input to position -1 (n) is copying them in the
            # nearest-doubled signal too: the 3-tap kernel of output 0 then reads frames (0, 0, 0) of the
            # doubled signal where zero padding gave it (zero, 0, 0). Output frames past the extra zero
            # frame below are cut off anyway.
            x = F.pad(x, mode="edge", pad_width=(0, 0, 0, 0, 1, 1, 0, 0, 0, 0))
            conv_pad[0] = 0
        if self.extra_frame:
            x = append_zero_frames(F, x, 1)
        # the bias goes in with the convolution (every phase gets it): a broadcast add afterwards costs
        # more in backward than the convolution itself
        phases = F.Convolution(x, self.phase_kernel(F, weight, gather), F.tile(bias, reps=2 ** self.ndim),
                               kernel=(2,) * self.ndim, pad=tuple(conv_pad),
                               num_filter=self.channels * 2 ** self.ndim)
        return interleave_phases(F, phases, self.channels, self.conv_size, tuple(2 * n for n in self.in_size))


# A stride-2, kernel-4, padding-1 transposed convolution along one axis, by output phase: output 2i reads
# x[i-1] with tap 3 and x[i] with tap 1; output 2i+1 reads x[i] with tap 2 and x[i+1] with tap 0. On the
# input zero-padded by 1, phase p is a 2-tap convolution whose window starts at position i + p. In q order
# (q = 1 - p, ``interleave_phases``): q = 0 -> taps (2, 0), q = 1 -> taps (3, 1).
TRANSPOSED_PHASE_TAPS = ((2, 0), (3, 1))


def transposed_phase_index(ndim, flipped=False):
    """For the weight (in, out, 4, ...) flattened to (in, out, 4**ndim): the taps of every (phase in q
    order, 2-tap position) pair, as one gather index of length 2**ndim * 2**ndim (phase-major).
    ``flipped``: every phase's 2-tap positions reversed along every axis (position t takes tap 1 - t), the
    kernel of the data gradient as a forward convolution (data_gradient.py)."""
    index = []
    for q_flat in range(2 ** ndim):
        qs = phase_bits(q_flat, ndim)
        for t_flat in range(2 ** ndim):
            ts = phase_bits((2 ** ndim - 1 - t_flat) if flipped else t_flat, ndim)
            tap = 0
            for q, t in zip(qs, ts):
                tap = tap * 4 + TRANSPOSED_PHASE_TAPS[q][t]
            index.append(tap)
    return index


class PhaseTransposedConvolution(GatherNotSaved, nn.HybridBlock):
    """The original's stride-2, kernel-4, padding-1 transposed convolution (``ndim`` 2 or 3), computed as
    one 2x2(x2) *convolution* of the zero-padded input with 2**ndim times the output channels (every
    output phase's kernel cut from the same weight, TRANSPOSED_PHASE_TAPS) and an interleave. The same
    function as ``nn.Conv3DTranspose(channels, 4, 2, 1)`` / ``Conv2DTranspose`` - the same parameter names,
    shapes (in, out, 4, ...) and initialisation, so checkpoints are interchangeable - but built from
    Convolution, so AMP runs it in bfloat16 (on AMX where the CPU has it) and it hybridizes under AMP,
    where MXNet 1.9.1's Deconvolution stays float32 and fails in backward when hybridized.

    The phase kernel is gathered from the weight by one row ``take`` between two transposes. ``in_size``:
    the input's spatial size. An input depth of 1 would give the convolution depth 2 (oneDNN's wrong weight
    gradient, ``needs_depth_padding``): one more zero frame is added and its outputs dropped."""

    def __init__(self, channels, in_channels, ndim, in_size, **kwargs):
        super().__init__(**kwargs)
        self.channels, self.in_channels, self.ndim = channels, in_channels, ndim
        self.in_size = tuple(in_size)
        self.extra_frame = ndim == 3 and needs_depth_padding(self.in_size[0] + 1)
        self.conv_size = tuple(n + 1 for n in self.in_size)
        if self.extra_frame:
            self.conv_size = (self.conv_size[0] + 1,) + self.conv_size[1:]
        with self.name_scope():
            self.weight = self.params.get("weight", shape=(in_channels, channels) + (4,) * ndim,
                                          init=mx_init.Normal(CONV_WEIGHT_STD))
            self.bias = self.params.get("bias", shape=(channels,), init="zeros")
            self.gather = self.params.get_constant("gather", mx_nd.array(transposed_phase_index(ndim)))
            # data gradients as forward convolutions (data_gradient.py), decided when the layer is built;
            # 3-D only: oneDNN 2.4.4 has an AMX backward-data kernel for 2-D convolutions
            self.data_gradient_by_forward = data_gradient.enabled() and ndim == 3
            if self.data_gradient_by_forward:
                self.gather_back = self.params.get_constant(
                    "gather_back", mx_nd.array(transposed_phase_index(ndim, flipped=True)))

    def _alias(self):
        # Gluon names every convolution layer conv<k> (one counter): the parameter names of the
        # Conv3DTranspose / Conv2DTranspose this block replaces
        return "conv"

    def tap_rows(self, F, weight):
        """(in, out, 4, ...) -> (4**ndim taps, out, in): the taps outermost, so the phase kernels' gather
        moves whole rows of out * in weights: ``take`` along the first axis copies (and its backward adds)
        contiguous rows, 10x faster than picking single elements along the last axis, which costs more
        than the transpose it saves. in and out are swapped in the same 3-axis transpose, which leaves the
        second transpose (``phase_kernel``) only the taps to move: 1.3x faster for the 8.4 M weights of
        G's largest layer than swapping them there (docs/performance.md)."""
        shape = (self.in_channels, self.channels, 4 ** self.ndim)
        return F.transpose(F.reshape(weight, shape=shape), axes=(2, 1, 0))

    def phase_kernel(self, F, rows, gather, back=False):
        """``tap_rows`` -> (2**ndim * out, in, 2, ...): every phase's 2-tap kernel, q order; with ``back``
        (and ``gather_back``) -> (in, 2**ndim * out, 2, ...) flipped along every axis: the kernel whose
        forward convolution of the phases' gradient is the input's (data_gradient.py)."""
        phases = 2 ** self.ndim
        rows = F.take(rows, gather, axis=0)                                     # (phase * taps, out, in)
        if back:
            rows = F.reshape(rows, shape=(phases, phases, self.channels, self.in_channels))
            kernel = F.transpose(rows, axes=(3, 0, 2, 1))                       # (in, phase, out, taps)
            return F.reshape(kernel, shape=(self.in_channels, phases * self.channels) + (2,) * self.ndim)
        rows = F.reshape(rows, shape=(phases, phases, self.channels * self.in_channels))
        kernel = F.transpose(rows, axes=(0, 2, 1))                              # (phase, out * in, taps)
        return F.reshape(kernel, shape=(phases * self.channels, self.in_channels) + (2,) * self.ndim)

    def hybrid_forward(self, F, x, weight, bias, gather, gather_back=None):
        # padding 1 on every side (the convolution's own: Pad has no bfloat16 kernel) -> n + 1 positions
        if self.extra_frame:     # one more zero frame at the end: the convolution never writes depth 2
            x = append_zero_frames(F, x, 1)
        rows = self.tap_rows(F, weight)
        kernel = self.phase_kernel(F, rows, gather)
        bias = F.tile(bias, reps=2 ** self.ndim)
        if self.data_gradient_by_forward:
            back = self.phase_kernel(F, F.BlockGrad(rows), gather_back, back=True)
            phases = data_gradient.convolution(F, x, kernel, bias, (2,) * self.ndim, (1,) * self.ndim,
                                               self.channels * 2 ** self.ndim, back)
        else:
            phases = F.Convolution(x, kernel, bias, kernel=(2,) * self.ndim, pad=(1,) * self.ndim,
                                   num_filter=self.channels * 2 ** self.ndim)
        return interleave_phases(F, phases, self.channels, self.conv_size, tuple(2 * n for n in self.in_size))


def space_to_depth(F, x, size):
    """Move every axis' phase ahead of the spatial axes: ``x`` (..., T, H, W) with even ``size`` (T, H, W)
    -> (..., 2, 2, 2, T/2, H/2, W/2) (returned flattened to (-1, 2, T/2 * H/2 * W/2); the caller reshapes),
    with out[..., pt, ph, pw, t, h, w] = x[..., 2t + pt, 2h + ph, 2w + pw]. The inverse of
    ``interleave_phases``' data movement, done the same way: three reshapes with one transpose of at most 4
    axes each (the ones oneDNN's reorder runs at the speed of a copy)."""
    t, h, w = (n // 2 for n in size)
    x = F.transpose(F.reshape(x, shape=(-1, t, 2, 4 * h * w)), axes=(0, 2, 1, 3))     # (.., pt, t, H*W)
    x = F.transpose(F.reshape(x, shape=(-1, t * h, 2, 2 * w)), axes=(0, 2, 1, 3))     # (.., ph, t*h, W)
    return F.transpose(F.reshape(x, shape=(-1, t * h * w, 2)), axes=(0, 2, 1))        # (.., pw, t*h*w)


class PhaseConvolution(nn.HybridBlock):
    """The original's stride-2, kernel-4, padding-1 3-D convolution (the discriminator's layers), computed
    as one *stride-1* 2x2x2 convolution of the zero-padded input's phases: along an axis, output o reads
    padded positions 2o + k for taps k = 0..3, i.e. phase k % 2 at position o + k // 2. So with the padded
    input's phases as 8 times the channels (``space_to_depth``) and the weight's taps regrouped the same way
    (tap 2a + p -> phase p, tap a), the layer is a plain convolution with no padding - the same function
    and the same parameters (names, shapes (out, in, 4, 4, 4), initialisation) as ``nn.Conv3D(channels, 4,
    2, 1)``, so checkpoints are interchangeable.

    Why: MXNet 1.9.1's oneDNN has no direct kernel for a *strided* 3-D convolution's backward passes on CPUs
    without AVX-512: they run on im2col + GEMM (``gemm:jit``), 2-3 times slower than the forward pass,
    where a stride-1 convolution runs all three passes on ``jit:avx2`` (docs/performance.md). ``in_size``:
    the input's (T, H, W), all even. Where the output has depth 2 (oneDNN's wrong weight gradient,
    ``needs_depth_padding``) two more zero frames give it depth 3 and the extra output frame is dropped."""

    def __init__(self, channels, in_channels, in_size, **kwargs):
        super().__init__(**kwargs)
        self.channels, self.in_channels = channels, in_channels
        self.out_depth = in_size[0] // 2
        self.extra_frames = 2 if needs_depth_padding(self.out_depth) else 0
        self.padded = (in_size[0] + 2 + self.extra_frames, in_size[1] + 2, in_size[2] + 2)
        self.data_gradient_by_forward = data_gradient.enabled()     # decided when the layer is built
        with self.name_scope():
            self.weight = self.params.get("weight", shape=(channels, in_channels, 4, 4, 4),
                                          init=mx_init.Normal(CONV_WEIGHT_STD))
            self.bias = self.params.get("bias", shape=(channels,), init="zeros")

    def _alias(self):
        # the parameter names of the Conv3D this block replaces (Gluon names every convolution conv<k>)
        return "conv"

    def hybrid_forward(self, F, x, weight, bias):
        x = F.pad(x, mode="constant", constant_value=0,
                  pad_width=(0, 0, 0, 0, 1, 1 + self.extra_frames, 1, 1, 1, 1))
        half = tuple(n // 2 for n in self.padded)
        x = F.reshape(space_to_depth(F, x, self.padded), shape=(-1, 8 * self.in_channels) + half)
        kernel = F.reshape(space_to_depth(F, weight, (4, 4, 4)), shape=(self.channels, 8 * self.in_channels, 2, 2, 2))
        # The convolution's data gradient comes back in oneDNN's blocked layout, which the transposes above
        # cannot reorder as the view their reshape makes ("could not create a primitive descriptor for a
        # reorder primitive"); clip has no oneDNN kernel, so its backward hands them plain data. Its bounds
        # are never reached: values and gradients pass unchanged.
        x = plain_copy(F, x)
        if self.data_gradient_by_forward:
            y = data_gradient.convolution(F, x, kernel, bias, (2, 2, 2), (0, 0, 0), self.channels,
                                          data_gradient.flipped_transposed(F, F.BlockGrad(kernel), 3))
        else:
            y = F.Convolution(x, kernel, bias, kernel=(2, 2, 2), num_filter=self.channels)
        if self.extra_frames:
            y = F.slice_axis(y, axis=2, begin=0, end=self.out_depth)
        return y


class DenseTransposedConvolution(nn.HybridBlock):
    """A stride-1, padding-0 transposed convolution of a 1x1(x1) input - the generator's projection of z to
    its first (kernel-sized) map - as one FullyConnected layer: output (o, position) = sum_i z_i W[i, o,
    position] + b_o. The parameters are the transposed convolution's (names, shapes (in, out, *kernel),
    initialisation), so checkpoints are interchangeable; FullyConnected runs in bfloat16 under AMP and,
    unlike Deconvolution, hybridizes there. Input (N, in, 1, ...) or (N, in)."""

    def __init__(self, channels, in_channels, kernel, **kwargs):
        super().__init__(**kwargs)
        self.channels, self.kernel = channels, tuple(kernel)
        self.positions = 1
        for k in self.kernel:
            self.positions *= k
        with self.name_scope():
            self.weight = self.params.get("weight", shape=(in_channels, channels) + self.kernel,
                                          init=mx_init.Normal(CONV_WEIGHT_STD))
            self.bias = self.params.get("bias", shape=(channels,), init="zeros")

    def _alias(self):
        return "conv"       # as PhaseTransposedConvolution's

    def hybrid_forward(self, F, z, weight, bias):
        matrix = F.transpose(F.reshape(weight, shape=(0, -1)))          # (out * positions, in)
        y = F.FullyConnected(F.flatten(z), matrix, F.repeat(bias, repeats=self.positions),
                             num_hidden=self.channels * self.positions)
        return F.reshape(y, shape=(-1, self.channels) + self.kernel)


def needs_depth_padding(conv_side_depth):
    """True where oneDNN's 3-D backward-weights is wrong: a convolution-side depth of exactly 2."""
    return conv_side_depth == 2


class PadFrames(nn.HybridBlock):
    """Append ``frames`` zero frames along T (axis 2) of (N, C, T, H, W)."""

    def __init__(self, frames, **kwargs):
        super().__init__(**kwargs)
        self.frames = frames

    def hybrid_forward(self, F, x):
        return append_zero_frames(F, x, self.frames)


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


def resize_conv3d(channels, in_channels, in_size, temporal_padding="zeros", **kwargs):
    """A 3-D ResizeConvolution as a one-block list (it applies the depth-2 workaround itself) and its
    output depth (doubled). ``in_size``: the input's (T, H, W)."""
    return [ResizeConvolution(channels, in_channels, 3, in_size, temporal_padding, **kwargs)], 2 * in_size[0]


class Passthrough(nn.HybridBlock):
    """The identity. Stands where the Deconvolution form has its depth-2 workaround blocks, so both forms
    have the same block indices - and so the same parameter names in saved files."""

    def hybrid_forward(self, F, x):
        return x


def phase_conv3d_transpose(channels, in_channels, in_size, **kwargs):
    """``conv3d_transpose(channels, 4, 2, 1, ...)`` as a PhaseTransposedConvolution (which needs no
    workaround at depth 2 and applies its own at depth 1), with the same block list layout; and its
    output depth."""
    layer = PhaseTransposedConvolution(channels, in_channels, 3, in_size, **kwargs)
    if needs_depth_padding(in_size[0]):
        return [Passthrough(), layer, Passthrough()], 2 * in_size[0]
    return [layer], 2 * in_size[0]


class StridedConv3D(nn.Conv3D):
    """``nn.Conv3D`` (the same parameters, names and function) whose data gradient, where the remedy is on
    when the layer is built (data_gradient.enabled: bfloat16 on AMX), is the float32 transposed convolution
    it is (data_gradient.strided_convolution) instead of oneDNN's bfloat16 backward-data."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.data_gradient_by_transposed = data_gradient.enabled()

    def hybrid_forward(self, F, x, weight, bias=None):
        if not self.data_gradient_by_transposed:
            return super().hybrid_forward(F, x, weight, bias)
        k = self._kwargs
        return data_gradient.strided_convolution(F, x, weight, bias, k["kernel"], k["stride"], k["pad"],
                                                 k["num_filter"])


def conv3d(channels, kernel, stride, pad, in_channels, in_depth, **kwargs):
    """A Conv3D as a list of blocks (with the depth-2 workaround where it applies), and its output depth.
    Its convolution side is its output; one more output frame needs ``stride`` more input frames."""
    kt = kernel[0] if isinstance(kernel, tuple) else kernel
    out_depth = (in_depth + 2 * pad - kt) // stride + 1
    layer = StridedConv3D(channels, kernel, stride, pad, **conv_kwargs(in_channels), **kwargs)
    return _depth_safe(layer, out_depth, stride, out_depth), out_depth


def phase_conv3d(channels, in_channels, in_size, **kwargs):
    """``conv3d(channels, 4, 2, 1, ...)`` as a PhaseConvolution (which applies its own depth-2 workaround),
    with the same block list layout; and its output depth."""
    layer = PhaseConvolution(channels, in_channels, in_size, **kwargs)
    if layer.extra_frames:
        return [Passthrough(), layer, Passthrough()], layer.out_depth
    return [layer], layer.out_depth


def linear_interpolation(out_size, in_size):
    """(out_size, in_size) matrix that enlarges a 1-D signal by linear interpolation with half-pixel
    centres and clamped edges (what cv2.resize's INTER_LINEAR does)."""
    matrix = np.zeros((out_size, in_size))
    for o in range(out_size):
        s = min(max((o + 0.5) * in_size / out_size - 0.5, 0.0), in_size - 1.0)
        low = int(s)
        high = min(low + 1, in_size - 1)
        matrix[o, low] += 1.0 - (s - low)
        matrix[o, high] += s - low
    return matrix


class Coarsen2D(nn.HybridBlock):
    """(N, C, S, S) -> the mean of every (S/coarse)^2 block, stretched back to S x S by bilinear
    interpolation: the image as ``coarse`` x ``coarse`` control points with straight lines between them
    (cv2.resize's INTER_AREA down, then INTER_LINEAR up). A demo-scale option for the background stream
    (docs/learning.md, tenth study). Nothing trained: the stretch is one constant matrix (a FullyConnected
    over the flattened control points, which exports to ONNX as it is; saved with the layer, as
    ResizeConvolution's constants are)."""

    def __init__(self, channels, size, coarse, **kwargs):
        super().__init__(**kwargs)
        if size % coarse:
            raise ValueError(f"coarse ({coarse}) must divide size ({size})")
        self.channels, self.size, self.coarse = channels, size, coarse
        rows = linear_interpolation(size, coarse)
        with self.name_scope():
            self.stretch = self.params.get_constant("stretch", mx_nd.array(np.kron(rows, rows)))  # (S*S, c*c)

    def hybrid_forward(self, F, x, stretch):
        block = self.size // self.coarse
        points = F.Pooling(x, kernel=(block, block), stride=(block, block), pool_type="avg")
        flat = F.reshape(points, shape=(-1, self.coarse * self.coarse))
        image = F.FullyConnected(flat, stretch, num_hidden=self.size * self.size, no_bias=True)
        return F.reshape(image, shape=(-1, self.channels, self.size, self.size))


def batchnorm2d(eps, channels=0):
    return nn.BatchNorm(**batchnorm_kwargs(eps, channels))


def count_trainable(block):
    """Number of trained parameters (Torch's count: running mean/var are buffers, not parameters)."""
    return sum(int(p.data().size) for p in block.collect_params().values() if p.grad_req != "null")
