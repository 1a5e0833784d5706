"""The training loop of main.lua (and main_conditional.lua), with exact resume, logs and samples.

One iteration, as in the original (spec section 3):

1. D step: forward G on the generator input (G in training mode), forward D on the real batch and,
   separately, on the fake batch (separate BN statistics); D's loss is CE(real, REAL) + CE(fake, FAKE),
   a sum of two batch means; Adam updates D.
2. G step: the non-saturating loss CE(D(G(z)), REAL) plus the mask prior 0.1 * mean(m) (conditional:
   plus 10 * the frame-1 L1 instead); Adam updates G.

``g_step="reuse"`` (default) is the original exactly: the G step reuses D's activations of the fake
batch from the D step, and back-propagates them through D's *updated* weights (Torch's
``netD:updateGradInput`` after ``optim.adam`` on D). MXNet does the same when the recorded graph is
back-propagated after the in-place Adam update; tests/test_training.py checks the numbers.
``g_step="recompute"`` is the usual Gluon port's deviation: a fresh D(G(z)) with the updated D (one more
D forward per iteration, and one more update of D's BN running statistics).

Multiple contexts (``--ctx cpu0,cpu1`` / ``gpu0,gpu1``) split every batch; each slice's loss is weighted
by its share of the batch, so the summed gradients equal the full-batch mean's, as with one context
(BN batch statistics are per slice, as in any data-parallel BN without synchronisation; BN running
statistics are averaged over the contexts after every iteration).
"""
import logging
import os
import time

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon

from . import checkpoint, losses, media
from .config import TrainConfig
from .context import parse_contexts, split_sizes, split_to_contexts
from .data import StripIter, read_list
from .data import synthetic
from .factory import build_networks, prepare

log = logging.getLogger(__name__)
SAMPLE_SEED_OFFSET = 1 << 30   # fixed z for the sample grids, disjoint from training draws


def latent(seed, iteration, batch, nz):
    """z of iteration ``iteration`` (counter-based: an exact resume needs no RNG state but the counter)."""
    return np.random.default_rng([seed, iteration]).standard_normal((batch, nz)).astype(np.float32)


def resolve_data_list(config):
    """The list file to train on; with no ``data_list``, the embedded synthetic dataset (made once)."""
    if config.data_list:
        return config.data_list
    directory = synthetic.default_directory(config.synthetic_clips, max(config.frames, 32), config.frame_height)
    log.info("no data list given: using the embedded synthetic dataset in %s", directory)
    return synthetic.ensure_dataset(directory, config.synthetic_clips, max(config.frames, 32), config.frame_height)


def make_iterator(config, part_index=0, num_parts=1):
    paths = read_list(resolve_data_list(config), config.data_root)
    return StripIter(paths, config.batch_size, frames=config.frames, size=config.size,
                     frame_height=config.frame_height, sampling=config.sampling, seed=config.seed,
                     num_workers=config.num_workers, max_bad=config.max_bad,
                     part_index=part_index, num_parts=num_parts)


class GanTraining:
    """Networks, optimisers, data and the loop. ``GanTraining(config, run_dir).run()`` trains;
    ``GanTraining.resume(run_dir)`` continues a run exactly where its last checkpoint left it."""

    def __init__(self, config: TrainConfig, run_dir, progress=True, iterator=None):
        self.config, self.run_dir, self.progress = config, run_dir, progress
        self.contexts = parse_contexts(config.ctx)
        os.makedirs(run_dir, exist_ok=True)
        mx.random.seed(config.seed)    # initialisation only; training draws are counter-based
        self.G, self.D = build_networks(config)
        for net in (self.G, self.D):
            prepare(net, self.contexts, config.hybridize)
        adam = dict(learning_rate=config.lr, beta1=config.beta1, beta2=config.beta2, epsilon=config.epsilon, wd=0.0)
        kvstore = config.kvstore if len(self.contexts) > 1 else None
        self.trainers = {name: gluon.Trainer(net.collect_params(), "adam", dict(adam), kvstore=kvstore)
                         for name, net in (("G", self.G), ("D", self.D))}
        self.data = iterator or make_iterator(config)
        self.iteration = 0
        self.total = config.iterations or 100 * self.data.batches_per_epoch   # niter = 100 epochs
        self.checkpoint_failures = 0

    # -- one iteration -----------------------------------------------------------------------------
    def generator_inputs(self, real, iteration):
        """The generator's inputs for batch ``real``: [z], or [first frame] (+ [z]) for the conditional model."""
        cfg = self.config
        if cfg.model == "conditional":
            first_frame = real[:, :, 0]                # the clip's first frame (main_conditional.lua:219)
            if cfg.cond_noise:
                return [first_frame, mx.nd.array(latent(cfg.seed, iteration, real.shape[0], cfg.cond_noise))]
            return [first_frame]
        return [mx.nd.array(latent(cfg.seed, iteration, real.shape[0], cfg.nz))]

    def video_penalty(self, video, real):
        """(leaf, term): G's loss term on the video - the conditional model's 10 * frame-1 L1 - computed on
        a leaf of its own (see ``step``), or (None, None) when the model has none."""
        if self.config.model != "conditional":
            return None, None
        leaf = video.detach()
        leaf.attach_grad()
        return leaf, losses.first_frame_l1(leaf, real[:, :, 0], self.config.l1_weight)

    def mask_penalty(self, mask):
        """Terms of G's loss on the mask: the unconditional model's 0.1 * mean(m) (none otherwise)."""
        if self.config.model == "unconditional":
            return losses.mask_prior(mask, self.config.mask_penalty)
        return None

    def step(self, real):
        """One D step and one G step on the batch ``real`` (an NDArray (B, 3, T, S, S)).
        Returns the batch-mean losses as floats.

        As in Torch, G's output is handed to D as a separate leaf (``fake``): the D step never reaches
        G, and the G step first collects dL/dfake and then back-propagates it through G in one pass
        (``net:backward(noise, df_dg)``), with the mask prior as G's second head. The video terms (the
        conditional L1) get a leaf of their own and their gradient is added to D's explicitly: inside
        autograd, oneDNN cannot sum D's blocked-layout gradient with a slice's plain one ("could not
        create a primitive descriptor for a sum primitive")."""
        b = real.shape[0]
        weights = [n / b for n in split_sizes(b, len(self.contexts))]
        reals = split_to_contexts(real, self.contexts)
        inputs = zip(*(split_to_contexts(a, self.contexts) for a in self.generator_inputs(real, self.iteration)))
        reuse = self.config.g_step == "reuse"
        parts = []
        with autograd.record():
            for x, gin, w in zip(reals, inputs, weights):
                video, _, mask, _ = self.G(*gin)
                fake = video.detach()
                fake.attach_grad()
                p = dict(w=w, x=x, video=video, fake=fake, mask=mask, fake_logits=self.D(fake),
                         d_real=losses.cross_entropy(self.D(x), losses.REAL), mask_penalty=self.mask_penalty(mask))
                p["d_fake"] = losses.cross_entropy(p["fake_logits"], losses.FAKE)
                p["d_loss"] = (p["d_real"] + p["d_fake"]) * w
                parts.append(p)
        autograd.backward([p["d_loss"] for p in parts], retain_graph=reuse)
        self.trainers["D"].step(1)
        with autograd.record():
            for p in parts:
                if not reuse:
                    # Deviation on request: a fresh D(G(z)) with the updated D.
                    p["fake"] = p["video"].detach()
                    p["fake"].attach_grad()
                    p["fake_logits"] = self.D(p["fake"])
                # reuse (original): the D-step graph of D(fake), back-propagated through D's updated weights.
                p["g_adv"] = losses.cross_entropy(p["fake_logits"], losses.REAL)
                p["video_leaf"], p["video_penalty"] = self.video_penalty(p["video"], p["x"])
                g_heads = [p["g_adv"] * p["w"]]
                if p["video_penalty"] is not None:
                    g_heads.append(p["video_penalty"] * p["w"])
                p["g_heads"] = g_heads
                if p["mask_penalty"] is not None:
                    p["mask_penalty_w"] = p["mask_penalty"] * p["w"]
        autograd.backward([h for p in parts for h in p["g_heads"]])     # -> dL/dfake (and dL/dvideo_leaf)
        head_grads = [p["fake"].grad + p["video_leaf"].grad if p["video_penalty"] is not None else p["fake"].grad
                      for p in parts]
        heads = [p["video"] for p in parts] + [p["mask_penalty_w"] for p in parts if "mask_penalty_w" in p]
        autograd.backward(heads, head_grads=head_grads + [None] * (len(heads) - len(parts)))
        self.trainers["G"].step(1)
        if len(self.contexts) > 1:
            self._average_running_statistics()
        self.iteration += 1
        return self._scalars(parts)

    def _average_running_statistics(self):
        """BN running statistics are updated per context (each from its slice). Average them after every
        iteration so all replicas hold the same state: checkpoints save the average anyway (Gluon's
        save_parameters reduces over contexts), and an exact resume needs the saved state to be the
        training state."""
        for net in (self.G, self.D):
            for param in net.collect_params().values():
                if param.grad_req == "null":
                    copies = param.list_data()
                    mean = mx.nd.add_n(*(c.as_in_context(self.contexts[0]) for c in copies)) / len(copies)
                    for c in copies:
                        mean.copyto(c)

    def _scalars(self, parts):
        def total(key):
            return float(sum(p[key].asscalar() * p["w"] for p in parts if p[key] is not None))
        d_real, d_fake, g_adv = total("d_real"), total("d_fake"), total("g_adv")
        penalty = total("mask_penalty") + total("video_penalty")
        mask_mean = float(sum(p["mask"].mean().asscalar() * p["w"] for p in parts))
        return {"loss_d": d_real + d_fake, "loss_d_real": d_real, "loss_d_fake": d_fake,
                "loss_g": g_adv + penalty, "loss_g_adv": g_adv, "penalty": penalty, "mask_mean": mask_mean}

    def next_batch(self):
        try:
            return self.data.next().data[0]
        except StopIteration:
            self.data.reset()
            return self.data.next().data[0]

    # -- state ------------------------------------------------------------------------------------
    def meta(self):
        return {"config": self.config.to_dict(), "data": self.data.state_dict(),
                "rng": {"kind": "counter", "seed": self.config.seed, "next_iteration": self.iteration},
                "total_iterations": self.total}

    def save_checkpoint(self):
        return checkpoint.save(self.run_dir, self.iteration, {"G": self.G, "D": self.D}, self.trainers,
                               self.meta(), keep=self.config.keep_checkpoints)

    def restore(self, checkpoint_dir):
        meta = checkpoint.load_into(checkpoint_dir, {"G": self.G, "D": self.D}, self.trainers, ctx=self.contexts)
        self.iteration = int(meta["iteration"])
        self.data.load_state_dict(meta["data"])
        return meta

    @classmethod
    def resume(cls, path, progress=True, iterations=None, **config_overrides):
        """Continue from ``path`` (a run folder or a checkpoint folder). ``iterations`` may extend the run."""
        ckpt = checkpoint.resolve(path)
        meta = checkpoint.read_meta(ckpt)
        values = dict(meta["config"], **config_overrides)
        if iterations is not None:
            values["iterations"] = iterations
        run = cls(TrainConfig.from_dict(values), os.path.dirname(os.path.abspath(ckpt)), progress=progress)
        run.restore(ckpt)
        log.info("resumed %s at iteration %d", ckpt, run.iteration)
        return run

    # -- the loop ---------------------------------------------------------------------------------
    def run(self):
        from tqdm import tqdm
        from .tblog import ScalarLog
        cfg = self.config
        with open(os.path.join(self.run_dir, "config.json"), "w") as f:
            f.write(cfg.to_json())
        scalars = ScalarLog(self.run_dir, start=self.iteration)
        n_fixed = min(cfg.batch_size, 16)
        fixed = None          # the generator inputs of the sample grids, fixed for the whole run
        bar = tqdm(total=self.total, initial=self.iteration, disable=not self.progress, unit="it",
                   dynamic_ncols=True, desc="train")
        started, last = time.time(), self.iteration
        try:
            while self.iteration < self.total:
                real = self.next_batch()
                if fixed is None:
                    fixed = [a[:n_fixed].asnumpy() for a in self.generator_inputs(real, SAMPLE_SEED_OFFSET)]
                values = self.step(real)
                bar.update(1)
                if self.iteration % cfg.log_every == 0 or self.iteration == self.total:
                    elapsed = time.time() - started
                    values["clips_per_s"] = (self.iteration - last) * cfg.batch_size / max(elapsed, 1e-9)
                    values["bad_clips"] = len(self.data.bad)
                    started, last = time.time(), self.iteration
                    scalars.write(self.iteration, values)
                    bar.set_postfix(D=f"{values['loss_d']:.3f}", G=f"{values['loss_g_adv']:.3f}",
                                    m=f"{values['mask_mean']:.2f}", refresh=False)
                if cfg.sample_every and (self.iteration % cfg.sample_every == 0 or self.iteration == self.total):
                    self.write_sample_grid(fixed)
                if self.iteration % cfg.checkpoint_every == 0 or self.iteration == self.total:
                    self._checkpoint(final=self.iteration == self.total)
        finally:
            bar.close()
            scalars.close()
            self.data.close()
        if self.data.bad:
            log.warning("%d bad clips were skipped during training: %s", len(self.data.bad),
                        "; ".join(f"{p}: {r}" for p, r in sorted(self.data.bad.items())[:10]))
        return self

    def _checkpoint(self, final):
        try:
            path = self.save_checkpoint()
            log.info("checkpoint %s", path)
        except checkpoint.CheckpointError as e:
            # Training state is still in memory: report, keep going, try again at the next interval.
            self.checkpoint_failures += 1
            log.error("%s", e)
            if final:
                raise

    def write_sample_grid(self, generator_inputs):
        """Grid GIFs of the fixed samples (video and mask) for watching training."""
        from .sampling import run_generator
        out = run_generator(self.G, generator_inputs, ctx=self.contexts[0])
        stem = os.path.join(self.run_dir, "samples", f"iter{self.iteration:08d}")
        media.write_gif(stem + "_video.gif", media.grid([media.to_frames(v) for v in out["video"]]))
        media.write_gif(stem + "_mask.gif", media.grid([media.to_frames(m, (0, 1)) for m in out["mask"]]))


def train(config, run_dir, progress=True):
    """Train from scratch with ``config`` into ``run_dir``; returns the GanTraining."""
    return GanTraining(config, run_dir, progress=progress).run()
