"""A block's forward pass and gradients against a float64 reference function, to the rounding of
float32."""
import mxnet as mx
import numpy as np
from mxnet import autograd, gluon, nd


def gradient_errors(blocks, reference, x, stride, pad, seed=0, hybridize=False):
    """Relative errors (forward, weight gradient, input gradient) of a block list against numpy; the
    loss sum(out * head) is linear in the weight and in the input, so differences are exact. Each gradient
    is compared along a random direction, relative to the sum of the magnitudes of that projection's terms
    (the projection itself can cancel to near 0 for some weights, which made the ratio flaky)."""
    rng = np.random.default_rng(seed)
    mx.random.seed(seed)          # the weights too: the same numbers whatever ran before
    net = gluon.nn.HybridSequential()
    net.add(*blocks)
    net.initialize(mx.init.Normal(0.05))
    if hybridize:
        net.hybridize(static_alloc=True)
    layer = [b for b in blocks if hasattr(b, "weight")][0]
    w = layer.weight.data().asnumpy().astype(np.float64)
    out = reference(x, w, stride, pad)
    head = rng.standard_normal(out.shape)
    xx = nd.array(x)
    xx.attach_grad()
    with autograd.record():
        y = net(xx)
    y.backward(nd.array(head))
    e, d = rng.standard_normal(w.shape), rng.standard_normal(x.shape)
    terms_w, terms_x = reference(x, e, stride, pad) * head, reference(d, w, stride, pad) * head
    return (np.abs(y.asnumpy() - out).max() / np.abs(out).max(),
            abs(terms_w.sum() - (layer.weight.grad().asnumpy() * e).sum()) / np.abs(terms_w).sum(),
            abs(terms_x.sum() - (xx.grad.asnumpy() * d).sum()) / np.abs(terms_x).sum())
