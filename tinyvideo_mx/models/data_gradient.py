"""Convolutions whose data gradient avoids oneDNN 2.4.4's bfloat16 backward-data kernel on AMX machines.

For y = conv(x, W) with stride 1 and padding p, the gradient to x is a *forward* convolution of dy with
the kernel flipped along every spatial axis and its two channel axes swapped, padding k - 1 - p. oneDNN 2.4.4
(MXNet 1.9.1's) runs bfloat16 forward convolutions on AMX but has no AMX kernel for backward-data: that pass
stays on ``jit_bf16:avx512_core_bf16``, which on an Intel Xeon with AMX is slower than float32 and took a
layer's backward-data 116 ms against 14 ms for the same arithmetic as a forward convolution on AMX
(docs/performance.md). So where bfloat16 runs on AMX (``enable``) the phase layers (layers.py) compute

    y = Convolution(BlockGrad(x), W, b)        # forward and weight gradient: MXNet's own, on AMX
    y = Custom(float32(y), x, BlockGrad(W'))   # the identity forward; backward: dy to y, and
                                               # dx = Convolution(dy, W') on AMX

where W' is the flipped, channel-swapped kernel. MXNet skips the first convolution's backward-data (its
input's gradient is blocked), and nothing else changes: the same function, the same weight gradient,
the data gradient of the same arithmetic in another order (exact in float32 to rounding; tests in
tests/test_onednn_workarounds.py).

D's *strided* convolutions (stride 2) have the same slow pass, run three times per iteration (the real and
the fake batch's D step, the G step). Their data gradient is a transposed convolution of dy with the same
weight. Computed in bfloat16 as phase convolutions on AMX, its interleave and kernel gather inside the
CustomOp cost more than they save; as a float32 Deconvolution (``strided_convolution``; bfloat16
Deconvolution segfaults in that oneDNN) it takes 91 against 142 ms per pass through D's three upper layers
at batch 8, and the whole ``--amp`` step 2-3 % less at batch 8 and 3-8 % at batch 16, for 12-17 % more
peak memory (docs/performance.md). The same CustomOp, with ``transposed`` set: dx =
Deconvolution(float32(dy), float32(W)), written into the input's gradient by ``put`` like every output
(the Deconvolution written there directly with ``out=`` gave wrong gradients).

Why the convolution's output reaches the CustomOp as plain float32 (``onednn_layout.plain_float32``):
MXNet 1.9.1 hands a CustomOp an input in oneDNN's blocked layout as a temporary plain copy that it frees
before the operator's asynchronous work has read it - garbage in the output now and then, a segfault once
the tensor is large enough to be unmapped. Under AMP that is the cast to float32 AMP makes before the
next reshape anyway; in float32 a plain copy. The operator writes its outputs with ``amp_cast(..., out=)``,
which also turns the bfloat16 data gradient into the float32 one (and, unlike ``copyto`` and ``identity``,
writes a CustomOp's bfloat16 arrays correctly).
"""
import mxnet as mx
from mxnet import nd

from .onednn_layout import plain_float32

OP_TYPE = "tinyvideo_mx_data_gradient_by_forward"

_enabled = False


def enable(on=True):
    """Switch the remedy on (True) or off for the phase layers built from now on in this process (like AMP,
    process-wide: training switches it on where bfloat16 runs on AMX, precision.data_gradient_by_forward)."""
    global _enabled
    _enabled = bool(on)


def enabled():
    return _enabled


def flipped_transposed(F, kernel, ndim):
    """(out, in, k...) -> (in, out, k...) reversed along every spatial axis: the kernel whose forward
    convolution of dy is the data gradient of a stride-1 convolution with ``kernel``."""
    return F.flip(F.swapaxes(kernel, 0, 1), axis=tuple(range(2, 2 + ndim)))


def convolution(F, x, kernel, bias, size, pad, num_filter, back):
    """``F.Convolution(x, kernel, bias, kernel=size, pad=pad, num_filter=num_filter)`` (stride 1), its data
    gradient computed as a forward convolution with ``back``: the flipped, channel-swapped kernel
    (``flipped_transposed``), built from the weight without a gradient path (a layer that gathers its
    kernel from another weight gathers this one the same way)."""
    y = F.Convolution(F.BlockGrad(x), kernel, bias, kernel=size, pad=pad, num_filter=num_filter)
    return F.Custom(plain_float32(F, y), x, F.BlockGrad(back), op_type=OP_TYPE,
                    size=repr(tuple(size)), pad=repr(tuple(k - 1 - p for k, p in zip(size, pad))))


def strided_convolution(F, x, weight, bias, size, stride, pad, num_filter):
    """``F.Convolution(x, weight, bias, kernel=size, stride=stride, pad=pad, num_filter=num_filter)``, its
    data gradient computed as the float32 transposed convolution it is (Deconvolution of dy with ``weight``,
    the same stride and padding)."""
    y = F.Convolution(F.BlockGrad(x), weight, bias, kernel=size, stride=stride, pad=pad, num_filter=num_filter,
                      no_bias=bias is None)
    return F.Custom(plain_float32(F, y), x, F.BlockGrad(weight), op_type=OP_TYPE, size=repr(tuple(size)),
                    pad=repr(tuple(pad)), stride=repr(tuple(stride)), transposed="1")


class DataGradientByForward(mx.operator.CustomOp):
    """Forward: the identity on input 0. Backward: dy to input 0; to input 1 Convolution(dy, input 2) (stride
    1, the flipped kernel), or with ``transposed`` the float32 Deconvolution(dy, input 2) (the weight itself)."""

    def __init__(self, size, pad, stride=None, transposed=False):
        super().__init__()
        self.size, self.pad, self.stride, self.transposed = size, pad, stride or (1,) * len(size), transposed

    def forward(self, is_train, req, in_data, out_data, aux):
        self.put(out_data[0], req[0], in_data[0])

    def backward(self, req, out_grad, in_data, out_data, in_grad, aux):
        dy = out_grad[0]
        self.put(in_grad[0], req[0], dy)
        if req[1] != "null":      # no one asks for the input's gradient (a network's first layer): skip it
            self.put(in_grad[1], req[1], self.data_gradient(dy, in_data[2], in_grad[1].shape))
        if req[2] != "null":      # a BlockGrad's input (MXNet asks for nothing): unread, but never garbage
            self.put(in_grad[2], req[2], nd.zeros_like(in_grad[2]))

    def data_gradient(self, dy, kernel, x_shape):
        if not self.transposed:
            return nd.Convolution(dy, kernel, no_bias=True, kernel=self.size, pad=self.pad, num_filter=kernel.shape[0])
        # the input sizes the strided convolution floored away come back as the transposed one's adj
        adj = tuple(n - ((m - 1) * s - 2 * p + k)
                    for n, m, s, p, k in zip(x_shape[2:], dy.shape[2:], self.stride, self.pad, self.size))
        return nd.Deconvolution(nd.amp_cast(dy, dtype="float32"), nd.amp_cast(kernel, dtype="float32"), no_bias=True,
                                kernel=self.size, stride=self.stride, pad=self.pad, adj=adj, num_filter=kernel.shape[1])

    @staticmethod
    def put(dst, req, value):
        """``value`` into ``dst`` as ``req`` says, in ``dst``'s type (amp_cast: see the module's docstring)."""
        if req == "null":
            return
        if req == "add":
            dst += nd.amp_cast(value, dtype=dst.dtype)
        else:
            nd.amp_cast(value, dtype=dst.dtype, out=dst)


def _int_tuple(text):
    """"(2, 2, 2)" -> (2, 2, 2): the ``repr`` ``convolution`` passes."""
    return tuple(int(v) for v in text.strip("()").split(",") if v.strip())


@mx.operator.register(OP_TYPE)
class DataGradientByForwardProp(mx.operator.CustomOpProp):
    def __init__(self, size, pad, stride="()", transposed="0"):
        super().__init__(need_top_grad=True)
        # CustomOp parameters arrive as strings
        self.size, self.pad, self.stride = _int_tuple(size), _int_tuple(pad), _int_tuple(stride)
        self.transposed = transposed == "1"

    def list_arguments(self):
        return ["y", "x", "back_kernel"]

    def infer_shape(self, in_shape):
        return in_shape, [in_shape[0]], []

    def infer_type(self, in_type):
        return in_type, [in_type[0]], []

    def declare_backward_dependency(self, out_grad, in_data, out_data):
        return [out_grad[0], in_data[2]]         # not x: its values are not needed, so it is freed

    def create_operator(self, ctx, shapes, dtypes):
        return DataGradientByForward(self.size, self.pad, self.stride, self.transposed)
