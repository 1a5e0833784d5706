"""One iteration of main.lua (and main_conditional.lua): the D step, then the G step.

As in the original (docs/original.md §3):

1. D step (``discriminator_step``): forward G on the generator input (G in training mode), forward D
   on the real batch and, separately, on the fake batch (separate BN statistics); D's loss is
   CE(real, REAL) + CE(fake, FAKE), a sum of two batch means; Adam updates D.
2. G step (``generator_step``): the non-saturating loss CE(D(G(z)), REAL) plus the mask prior
   0.1 * mean(m) (conditional: plus 10 * the frame-1 L1 instead; with ``mode_seeking``, a deviation, its
   term too); Adam updates G.

``g_step="reuse"`` (default) is the original exactly: the G step reuses D's activations of the fake
batch from the D step, and back-propagates them through D's *updated* weights (Torch's
``netD:updateGradInput`` after ``optim.adam`` on D). MXNet does the same when the recorded graph is
back-propagated after the in-place Adam update; tests/test_training.py checks the numbers.
``g_step="recompute"`` is the usual Gluon port's deviation: a fresh D(G(z)) with the updated D (one more
D forward per iteration, and one more update of D's BN running statistics).

Data parallel training (``--ctx cpu0,cpu1`` / ``gpu0,gpu1`` within a process, ``--kvstore dist_sync``
across processes): the global batch (``batch_size``) is split over workers, then over each worker's
contexts; each slice's loss is weighted by its share of the global batch, so the summed gradients equal
the global batch mean's, as with one context (BN batch statistics are per slice, as in any data-parallel
BN without synchronisation). ``replicas.Replicas`` sums the gradients and averages BN running statistics
after every iteration. Worker r reads shard r of the list and uses rows r*b..(r+1)*b of the global
batch's z, so W workers with one context each compute what one process with W contexts computes on the
concatenated batch.
"""
import dataclasses

import mxnet as mx
import numpy as np
from mxnet import autograd

from ..generation.inference import generator_inputs
from ..runtime.context import split_sizes, split_to_contexts
from . import losses

NOISE_STREAM = 1     # instance noise of iteration k: default_rng([seed, k, NOISE_STREAM]); z uses [seed, k]


def gradients_into(params, heads, retain_graph=False):
    """Back-propagate ``heads`` into the gradient buffers of the trained ``params`` alone.

    ``autograd.backward`` computes the gradient of every marked variable the heads reach; here that
    would include leaves whose gradient is not wanted (the fake batch in the D step). ``autograd.grad``
    with an explicit variable list lets MXNet skip the rest, and the result is written where the
    Trainer reads it."""
    trained = [p for p in params.values() if p.grad_req != "null"]
    variables = [a for p in trained for a in p.list_data()]
    for grad, buffer, variable in zip(autograd.grad(heads, variables, retain_graph=retain_graph),
                                      [g for p in trained for g in p.list_grad()], variables):
        grad.copyto(buffer)
        variable._fresh_grad = True    # what backward sets; the Trainer refuses stale gradients


def remaining_share(iteration, until):
    """The share left at ``iteration`` of a term that falls linearly from all of it at iteration 0 to none
    at ``until`` (instance noise, a fading mask prior); None: the whole term, always."""
    return max(0.0, 1.0 - iteration / until) if until else 1.0


def falling_rate(start, end, iteration, begin, until):
    """A learning rate that is ``start`` up to iteration ``begin``, then falls linearly to ``end`` at ``until``
    and stays there; ``end`` None: ``start`` throughout (the original's constant rates)."""
    if end is None:
        return start
    share = min(1.0, max(0.0, (iteration - begin) / (until - begin)))
    return start * (1.0 - share) + end * share


def with_noise(clips, noise):
    """What D sees: the clips, plus instance noise when there is some."""
    return clips if noise is None else clips + noise


@dataclasses.dataclass
class Slice:
    """One context's share of an iteration: its part of the batch and what the two steps make of it."""
    weight: float                  # share of the global batch: every loss of the slice is scaled by it
    real: mx.nd.NDArray
    generator_inputs: tuple        # [z], or [first frame] (+ [z]) for the conditional model
    video: mx.nd.NDArray = None    # G's output, recorded: the G step back-propagates into it
    mask: mx.nd.NDArray = None
    fake: mx.nd.NDArray = None     # the video as a leaf of its own: what D sees
    fake_logits: mx.nd.NDArray = None
    noise: tuple = (None, None)    # instance noise added to what D sees: (on the real clips, on the fakes)
    d_real: mx.nd.NDArray = None
    d_fake: mx.nd.NDArray = None
    mask_penalty: mx.nd.NDArray = None    # unconditional: 0.1 * mean(m)
    mode_seeking: mx.nd.NDArray = None    # --mode-seeking: weight / (video distance per unit of z distance)
    g_adv: mx.nd.NDArray = None
    video_leaf: mx.nd.NDArray = None      # conditional: a leaf for the frame-1 L1 (see generator_step)
    video_penalty: mx.nd.NDArray = None


class GanStep:
    """The step's mathematics, for ``loop.GanTraining``, which owns what it reads: ``config``, the networks
    ``G`` and ``D`` and their parameters ``params`` ({"G": ..., "D": ...}: Gluon's ``collect_params`` walks
    the network on every call, so it is called once), their ``trainers``, ``precision``, ``replicas``,
    ``contexts``, the ``iteration`` and the weight average ``G_average``."""

    def generator_inputs(self, real, iteration):
        """The generator's inputs for batch ``real``: [z], or [first frame] (+ [z]) for the conditional model.
        z is this worker's rows of the global batch's z of ``iteration``."""
        cfg = self.config
        rows = real.shape[0]
        first_frames = real[:, :, 0] if cfg.is_conditional else None   # main_conditional.lua:219
        inputs = generator_inputs(cfg, [cfg.seed, iteration], rows, first_frames, first_row=self.replicas.rank * rows)
        return [a if isinstance(a, mx.nd.NDArray) else mx.nd.array(a) for a in inputs]

    def video_penalty(self, video, real):
        """(leaf, term): G's loss term on the video - the conditional model's 10 * frame-1 L1 - computed on
        a leaf of its own (see ``step``), or (None, None) when the model has none."""
        if not self.config.is_conditional:
            return None, None
        leaf = video.detach()
        leaf.attach_grad()
        return leaf, losses.first_frame_l1(leaf, real[:, :, 0], self.config.l1_weight)

    def mask_penalty(self, mask):
        """Terms of G's loss on the mask: the unconditional model's 0.1 * mean(m) (none otherwise), falling
        linearly to 0 at iteration ``mask_penalty_until`` when that is set."""
        cfg = self.config
        if cfg.is_conditional:
            return None
        return losses.mask_prior(mask, cfg.mask_penalty * remaining_share(self.iteration, cfg.mask_penalty_until))

    def step(self, real):
        """One iteration of main.lua on the batch ``real`` (an NDArray (B, 3, T, S, S)): the D step, then
        the G step. Returns the batch-mean losses as floats.

        As in Torch, G's output is handed to D as a separate leaf (``fake``): the D step never reaches
        G, and the G step first collects dL/dfake and then back-propagates it through G in one pass
        (``net:backward(noise, df_dg)``)."""
        self._make_replicas_agree()
        self.set_learning_rates()
        slices = self._slices(real)
        self.discriminator_step(slices)
        self.generator_step(slices)
        self._end_iteration()
        return self.replicas.sum_scalars(self._scalars(slices))

    def set_learning_rates(self):
        """Adam's rates for this iteration: the starting ones (the original), or, with ``lr_fall_from``, falling
        linearly to ``lr_end`` (G) and ``d_lr_end`` (D) at ``lr_fall_until`` (set by __init__). A function of the
        iteration alone, so resume stays exact."""
        cfg = self.config
        if cfg.lr_fall_from is None:
            return
        for name, end in (("G", cfg.lr_end), ("D", cfg.d_lr_end)):
            self.trainers[name].set_learning_rate(
                falling_rate(cfg.rates[name], end, self.iteration, cfg.lr_fall_from, cfg.lr_fall_until))

    def _make_replicas_agree(self):
        """Once, before the first step: every replica starts from rank 0's initial weights."""
        if not self._replicas_agree:
            for params in self.params.values():
                self.replicas.broadcast(params)
            self._replicas_agree = True

    def _slices(self, real):
        """The batch split over this worker's contexts, each slice weighted by its share of the global batch."""
        b = real.shape[0]
        weights = [n / (b * self.replicas.world_size) for n in split_sizes(b, len(self.contexts))]
        reals = split_to_contexts(real, self.contexts)
        inputs = zip(*(split_to_contexts(a, self.contexts) for a in self.generator_inputs(real, self.iteration)))
        slices = [Slice(weight=w, real=x, generator_inputs=gin) for x, gin, w in zip(reals, inputs, weights)]
        for s, noise in zip(slices, self.instance_noise(real.shape)):
            s.noise = noise
        return slices

    def instance_noise(self, shape):
        """Per context, (noise for the real clips, noise for the fakes): Gaussian with a standard deviation
        falling linearly from ``instance_noise`` to 0 at iteration ``instance_noise_until`` (set by __init__);
        (None, None) when there is none. Drawn counter-based for the global batch, as z is, so resume stays
        exact and this worker takes its rows."""
        cfg = self.config
        sigma = cfg.instance_noise and cfg.instance_noise * remaining_share(self.iteration, cfg.instance_noise_until)
        if not sigma:
            return [(None, None)] * len(self.contexts)
        rng = np.random.default_rng([cfg.seed, self.iteration, NOISE_STREAM])
        rows = slice(self.replicas.rank * shape[0], (self.replicas.rank + 1) * shape[0])
        pairs = [sigma * rng.standard_normal((cfg.batch_size,) + tuple(shape[1:]), dtype=np.float32)[rows]
                 for _ in range(2)]
        return list(zip(*(split_to_contexts(mx.nd.array(a), self.contexts) for a in pairs)))

    def discriminator_step(self, slices):
        # (1) Update D network: CE(D(x), real) + CE(D(G(z)), fake), each a batch mean; Adam on D.
        # G runs here too (in training mode), and its priors (mask, mode seeking) are recorded for the G step.
        scale = self.precision.loss_scale("D")     # 1 unless float16 AMP
        d_losses = []
        with autograd.record():
            for s in slices:
                s.video, _, s.mask, _ = self.G(*s.generator_inputs)
                s.fake = s.video.detach()
                s.fake.attach_grad()
                s.fake_logits = self.D(with_noise(s.fake, s.noise[1]))
                s.d_real = losses.cross_entropy(self.D(with_noise(s.real, s.noise[0])), losses.REAL,
                                                self.config.label_smoothing)
                s.mask_penalty = self.mask_penalty(s.mask)
                if self.config.mode_seeking:
                    s.mode_seeking = losses.mode_seeking(s.video, s.generator_inputs[0], self.config.mode_seeking)
                s.d_fake = losses.cross_entropy(s.fake_logits, losses.FAKE)
                d_losses.append((s.d_real + s.d_fake) * (s.weight * scale))
        # Only D's weight gradients: dL_D/dfake is never used, so it is not computed (the fake batch's
        # first-layer data gradient is the largest single backward of D). The graph is kept for the
        # original's G step, which reuses it.
        gradients_into(self.params["D"], d_losses, retain_graph=self.config.g_step == "reuse")
        self.replicas.sum_gradients(self.params["D"])
        self.trainers["D"].step(1)

    def generator_step(self, slices):
        # (2) Update G network: the non-saturating CE(D(G(z)), real) plus G's prior (0.1 * mean(m);
        # conditional: 10 * the frame-1 L1; with --mode-seeking its term); Adam on G.
        # g_step "reuse" (the original): the D-step graph of D(fake), back-propagated through D's
        # *updated* weights; "recompute" (the usual port): a fresh D(G(z)).
        scale = self.precision.loss_scale("G")
        heads, priors = [], []
        with autograd.record():
            for s in slices:
                if self.config.g_step == "recompute":
                    s.fake = s.video.detach()
                    s.fake.attach_grad()
                    s.fake_logits = self.D(with_noise(s.fake, s.noise[1]))
                s.g_adv = losses.cross_entropy(s.fake_logits, losses.REAL)
                s.video_leaf, s.video_penalty = self.video_penalty(s.video, s.real)
                heads += [t * (s.weight * scale) for t in (s.g_adv, s.video_penalty) if t is not None]
                priors += [t * (s.weight * scale) for t in (s.mask_penalty, s.mode_seeking) if t is not None]
        # dL/dfake (and dL/dvideo_leaf) only: D's weight gradients of this pass would be thrown away.
        # The video terms (the conditional L1) have a leaf of their own and their gradient is added to
        # D's explicitly: inside autograd, oneDNN cannot sum D's blocked-layout gradient with a slice's
        # plain one ("could not create a primitive descriptor for a sum primitive").
        video_terms = [i for i, s in enumerate(slices) if s.video_penalty is not None]
        grads = autograd.grad(heads, [s.fake for s in slices] + [slices[i].video_leaf for i in video_terms])
        to_video = grads[:len(slices)]
        for extra, i in zip(grads[len(slices):], video_terms):
            to_video[i] = to_video[i] + extra
        # Then through G in one pass: dL/dvideo into the videos, the priors as heads of their own.
        autograd.backward([s.video for s in slices] + priors, head_grads=to_video + [None] * len(priors))
        self.replicas.sum_gradients(self.params["G"])
        self.trainers["G"].step(1)

    def _end_iteration(self):
        # BN running statistics are updated per replica (each from its slice). Averaged after every
        # iteration so all replicas hold the same state: Gluon's save_parameters averages over contexts
        # anyway, and an exact resume needs the saved state to be the state training continues from.
        for params in self.params.values():
            self.replicas.average(params)
        if self.G_average:
            self.G_average.update(self.iteration)
        self.iteration += 1

    def _scalars(self, slices):
        def total(name):
            return float(sum(getattr(s, name).asscalar() * s.weight for s in slices if getattr(s, name) is not None))
        d_real, d_fake, g_adv = total("d_real"), total("d_fake"), total("g_adv")
        penalty = total("mask_penalty") + total("video_penalty") + total("mode_seeking")
        mask_mean = float(sum(s.mask.mean().asscalar() * s.weight for s in slices))
        return {"loss_d": d_real + d_fake, "loss_d_real": d_real, "loss_d_fake": d_fake,
                "loss_g": g_adv + penalty, "loss_g_adv": g_adv, "penalty": penalty, "mask_mean": mask_mean}
