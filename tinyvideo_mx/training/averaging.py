"""An exponential moving average of the generator's weights, for sampling (a demo-preset deviation, off
in the original recipe: docs/deviations.md).

GAN weights oscillate: at the demo's scale the artefacts of the latest G rise and fall by 2x from one
few-hundred-iteration stretch to the next (docs/learning.md). Sampling from a running average of G's
weights instead (Yazici et al., "The Unusual Effectiveness of Averaging in GAN Training", ICLR 2019;
StyleGAN's G_ema) smooths those oscillations out at the cost of one multiply-add per weight per step;
training itself is unchanged - the average is never trained and D never sees it.

Warm-up as TensorFlow's ExponentialMovingAverage with ``num_updates``: the decay at step t is
min(decay, (1 + t) / (10 + t)), so early steps do not drag the average back towards the initialisation.
At the demo's 800 iterations that caps the decay at 0.989, an average over about the last 90 iterations;
a shorter one (the twelfth study in docs/learning.md) and a longer one (the nineteenth: 4 instead of 10,
about 270 iterations) sampled clips further from the training clips.
BatchNorm running statistics are copied, not averaged, at every step; but they describe the current
weights' activations, not the average's, and sampling with them washed the colours out (docs/learning.md).
So every network made to run (``snapshot``) first re-estimates them from its own activations, as SWA does
(Izmailov et al., UAI 2018): ``STATISTICS_BATCHES`` batches of fixed generator inputs in training mode,
after which the old statistics weigh 0.9**40 < 2 %.

The averaged network is storage only and never runs: oneDNN reorders a network's weights in place when
it runs inference, after which writing the next average into them fails ("to.IsDefaultData()").
Samples come from ``snapshot()``, a fresh copy.
"""


import mxnet as mx
from mxnet import autograd

STATISTICS_BATCHES = 40


def effective_decay(decay, step):
    return min(decay, (1.0 + step) / (10.0 + step))


class GeneratorAverage:
    """Keeps ``average`` (a network built like ``source``, same parameter names) as the moving average.
    ``build()`` makes another initialised network of the same kind, for ``snapshot``; ``inputs(k)`` gives
    batch k of the generator inputs its BatchNorm statistics are re-estimated on (None: keep the copies)."""

    def __init__(self, source, average, decay, build, inputs=None):
        self.source, self.average, self.decay, self.build, self.inputs = source, average, decay, build, inputs
        self.pairs = [(p, average.collect_params()[name]) for name, p in source.collect_params().items()]
        self.copy()

    def copy(self):
        """average := source (at the start of training)."""
        for src, dst in self.pairs:
            for s, d in zip(src.list_data(), dst.list_data()):
                s.copyto(d)

    def snapshot(self):
        """A new network holding the average now, with BatchNorm statistics of its own, to run."""
        net = self.build()
        stored = self.average.collect_params()
        for name, p in net.collect_params().items():
            p.set_data(stored[name].data())
        if self.inputs:
            estimate_batchnorm_statistics(net, self.inputs)
        return net

    def update(self, step):
        """After optimiser step ``step`` (0-based) of the source."""
        decay = effective_decay(self.decay, step)
        for src, dst in self.pairs:
            for s, d in zip(src.list_data(), dst.list_data()):
                if src.grad_req == "null":           # BN running statistics
                    s.copyto(d)
                else:   # the blend written straight into the average: ``d[:] = ...`` costs 3x the Python time
                    mx.nd.elemwise_add(d * decay, s * (1.0 - decay), out=d)


def estimate_batchnorm_statistics(net, inputs, batches=STATISTICS_BATCHES):
    """Run ``net`` in training mode on ``inputs(k)`` for k < ``batches``, on every context it lives on (the
    same inputs, so replicas keep equal statistics). MXNet updates BatchNorm running statistics in the
    backward pass (docs/deviations.md, row 5), so each batch is back-propagated; the weights' gradients
    are computed and thrown away, and the weights do not change."""
    for ctx in next(iter(net.collect_params().values())).list_ctx():
        for k in range(batches):
            arrays = [mx.nd.array(a, ctx=ctx) for a in inputs(k)]
            for a in arrays:
                a.attach_grad()     # gives the recorded graph a leaf whatever the network's grad_req
            with autograd.record():
                outputs = net(*arrays)
            autograd.backward(list(outputs) if isinstance(outputs, (list, tuple)) else [outputs])
