"""Exact float64 numpy references: 3-D (transposed) convolution and a small interpreter that runs our
HybridSequential streams layer by layer from their parameters (BN in training mode, as in a step)."""
import numpy as np


def _triple(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v, v)


def _offsets(kernel):
    return [(a, b, c) for a in range(kernel[0]) for b in range(kernel[1]) for c in range(kernel[2])]


def conv3d_transpose(x, w, stride, pad):
    """x (N, C_in, T, H, W), w (C_in, C_out, kT, kH, kW)."""
    s, p = _triple(stride), _triple(pad)
    n, _, *size = x.shape
    _, c_out, *k = w.shape
    full = np.zeros((n, c_out) + tuple((size[i] - 1) * s[i] + k[i] for i in range(3)))
    for a, b, c in _offsets(k):
        full[:, :, a:a + (size[0] - 1) * s[0] + 1:s[0], b:b + (size[1] - 1) * s[1] + 1:s[1],
             c:c + (size[2] - 1) * s[2] + 1:s[2]] += np.einsum("nithw,io->nothw", x, w[:, :, a, b, c])
    return full[:, :, p[0]:full.shape[2] - p[0], p[1]:full.shape[3] - p[1], p[2]:full.shape[4] - p[2]]


def conv3d(x, w, stride, pad):
    """x (N, C_in, T, H, W), w (C_out, C_in, kT, kH, kW)."""
    s, p = _triple(stride), _triple(pad)
    c_out, _, *k = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1]), (p[2], p[2])))
    o = [(xp.shape[2 + i] - k[i]) // s[i] + 1 for i in range(3)]
    out = np.zeros((x.shape[0], c_out, *o))
    for a, b, c in _offsets(k):
        out += np.einsum("nithw,oi->nothw", xp[:, :, a:a + (o[0] - 1) * s[0] + 1:s[0], b:b + (o[1] - 1) * s[1] + 1:s[1],
                                             c:c + (o[2] - 1) * s[2] + 1:s[2]], w[:, :, a, b, c])
    return out


def resize_conv(x, w, replicate_time=False):
    """Nearest-neighbour doubling of every spatial axis, then a 3-tap convolution with padding 1, the
    plain way. x (N, C_in, T, H, W) with w (C_out, C_in, 3, 3, 3), or 2-D: x (N, C_in, H, W), w (C_out, C_in, 3, 3).
    ``replicate_time`` (3-D): the doubled clip is padded along time with copies of its end frames."""
    two_d = x.ndim == 4
    for axis in range(2, x.ndim):
        x = np.repeat(x, 2, axis=axis)
    if two_d:
        return conv3d(x[:, :, None], w[:, :, None], 1, (0, 1, 1))[:, :, 0]
    if replicate_time:
        return conv3d(np.pad(x, ((0, 0), (0, 0), (1, 1), (0, 0), (0, 0)), mode="edge"), w, 1, (0, 1, 1))
    return conv3d(x, w, 1, 1)


def run_sequential(seq, x, params):
    """Run a HybridSequential of our layers in float64. ``params``: {parameter name: float64 array}.
    2-D layers run as 3-D ones with a depth-1 kernel. PadFrames/KeepFrames are the identity here: the
    reference is the plain mathematics they must reproduce."""
    two_d = x.ndim == 4
    if two_d:
        x = x[:, :, None]
    for block in seq:
        kind = type(block).__name__
        if kind in ("Conv3DTranspose", "Conv2DTranspose", "Conv3D", "Conv2D", "StridedConv3D"):
            kw = block._kwargs
            w = params[block.weight.name]
            stride, pad = kw["stride"], kw["pad"]
            if kind.startswith("Conv2D"):
                w, stride, pad = w[:, :, None], (1,) + tuple(stride), (0,) + tuple(pad)
            op = conv3d_transpose if "Transpose" in kind else conv3d
            x = op(x, w, stride, pad) + params[block.bias.name][None, :, None, None, None]
        elif kind in ("PhaseTransposedConvolution", "DenseTransposedConvolution"):
            w = params[block.weight.name]
            stride, pad = ((2, 1) if kind.startswith("Phase") else (1, 0))
            if two_d:
                w, stride, pad = w[:, :, None], (1, stride, stride), (0, pad, pad)
            x = conv3d_transpose(x, w, stride, pad) + params[block.bias.name][None, :, None, None, None]
        elif kind == "PhaseConvolution":          # the original's Conv3D(4, 2, 1) (D's layers)
            x = conv3d(x, params[block.weight.name], 2, 1) + params[block.bias.name][None, :, None, None, None]
        elif kind == "ResizeConvolution":
            w = params[block.weight.name]
            x = (resize_conv(x[:, :, 0], w)[:, :, None] if two_d else resize_conv(x, w, block.replicate_time))
            x = x + params[block.bias.name][None, :, None, None, None]
        elif kind in ("BatchNorm3D", "BatchNorm"):
            bn = block.bn if kind == "BatchNorm3D" else block
            mean = x.mean(axis=(0, 2, 3, 4), keepdims=True)
            var = x.var(axis=(0, 2, 3, 4), keepdims=True)
            shape = (1, -1, 1, 1, 1)
            x = (params[bn.gamma.name].reshape(shape) * (x - mean) / np.sqrt(var + bn._kwargs["eps"])
                 + params[bn.beta.name].reshape(shape))
        elif kind == "Activation":
            x = {"relu": lambda v: np.maximum(v, 0), "tanh": np.tanh}[block._act_type](x)
        elif kind == "LeakyReLU":
            x = np.where(x > 0, x, block._alpha * x)
        elif kind in ("PadFrames", "KeepFrames", "Passthrough"):
            continue
        else:
            raise TypeError(f"no reference for {kind}")
    return x[:, :, 0] if two_d else x


def conv2d_transpose(x, w, stride, pad):
    """2-D transposed convolution as the 3-D one with a depth of 1."""
    return conv3d_transpose(x[:, :, None], w[:, :, None], (1, stride, stride), (0, pad, pad))[:, :, 0]
