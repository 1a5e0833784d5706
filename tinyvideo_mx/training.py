"""The training loop of main.lua (and main_conditional.lua), with exact resume, logs and samples.

One iteration, as in the original (docs/original.md §3):

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
import logging
import os
import time
import uuid

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon

from . import checkpoint, evaluation, losses, media, run_folder
from .config import TrainConfig
from .context import parse_contexts, split_sizes, split_to_contexts
from .data.sources import make_iterator, resolve_data_list, training_clips
from .averaging import GeneratorAverage
from .factory import build_generator, build_networks, prepare
from .inference import OUTPUT_RANGES, SAMPLE_GRID_ITERATION, STATISTICS_ITERATION, generator_inputs, run_generator
from .metrics import video_networks
from .metrics.clip_statistics import clip_statistics, nearest_neighbour_distance
from .fsutil import write_text_atomic
from .precision import Precision
from .replicas import Replicas
from .errors import SettingError

log = logging.getLogger(__name__)
# statistics logged as generated / real ratios (metrics/clip_statistics.py; report.py draws them)
NOISE_STREAM = 1     # instance noise of iteration k: default_rng([seed, k, NOISE_STREAM]); z uses [seed, k]
LOGGED_RATIOS = ("checkerboard", "flicker", "motion", "colour_spread", "colour_std", "end_contrast", "diversity")


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


class GanTraining:
    """Networks, optimisers, data and the loop. ``GanTraining(config, run_dir).run()`` trains;
    ``GanTraining.resume(run_dir)`` continues a run exactly where its last checkpoint left it."""

    def __init__(self, config: TrainConfig, run_dir, progress=True, iterator=None, overwrite=False, new_run=True,
                 steal_lock=False):
        """``new_run``: ``run_dir`` must not hold another run (``overwrite`` moves one aside); resuming
        passes False. Only the chief (rank 0) touches the folder, and owns it (run_folder.take_ownership)
        until ``run`` ends; ``steal_lock`` takes it from another host's trainer."""
        self.config, self.run_dir, self.progress = config, run_dir, progress
        self.contexts = parse_contexts(config.ctx)
        self.replicas = Replicas(self.contexts, config.kvstore)
        rank, workers = self.replicas.rank, self.replicas.world_size
        if config.batch_size % workers:
            raise SettingError(f"--batch-size {config.batch_size} does not split evenly over {workers} workers")
        self.local_batch = config.batch_size // workers
        if self.local_batch % len(self.contexts):
            # An uneven split would give the replicas different BN batch sizes and loss weights.
            raise SettingError(f"--batch-size {config.batch_size} does not split evenly over the "
                               f"{len(self.contexts) * workers} replicas of --ctx {config.ctx}"
                               + (f" x {workers} workers" if workers > 1 else ""))
        self.precision = Precision(config.amp, self.contexts)
        if self.replicas.is_chief:
            if new_run:
                run_folder.claim(run_dir, overwrite, steal=steal_lock)
            else:
                run_folder.take_ownership(run_dir, "--resume", steal=steal_lock)
            run_folder.clean_temporaries(run_dir)     # only ever by the folder's owner
        self.run_id = uuid.uuid4().hex   # checkpoints carry it: pruning touches only this run's
        self.precision.enable()          # before the networks exist (AMP rewrites operators)
        mx.random.seed(config.seed)    # initialisation only; training draws are counter-based
        self.G, self.D = build_networks(config, self.precision.dtype, self.contexts[0].device_type)
        prepare(self.G, self.contexts,
                config.hybridize and self.precision.hybridize_generator(self.G.form, config.upsampling))
        prepare(self.D, self.contexts, config.hybridize)
        adam = dict(beta1=config.beta1, beta2=config.beta2, epsilon=config.epsilon, wd=0.0)
        rates = {"G": config.lr, "D": config.d_lr or config.lr}
        # The optimiser runs on every replica, on gradients Replicas has summed (see replicas.py).
        self.trainers = {name: gluon.Trainer(net.collect_params(), "adam", dict(adam, learning_rate=rates[name]),
                                             kvstore=None)
                         for name, net in (("G", self.G), ("D", self.D))}
        self.precision.attach(self.trainers)
        self.G_average = None            # the moving average of G's weights that samples come from (g_ema)
        self._snapshot = None            # (iteration, the average made runnable at that iteration)
        if config.g_ema:
            def build():
                return prepare(build_generator(config, self.G.form), self.contexts, config.hybridize)
            self.G_average = GeneratorAverage(self.G, build(), config.g_ema, build, self.statistics_inputs())
        self._replicas_agree = False     # rank 0's initial weights are broadcast before the first step
        self.data = iterator or make_iterator(config, part_index=rank, num_parts=workers)
        self.iteration = 0
        self.total = config.iterations or 100 * self.data.batches_per_epoch   # niter = 100 epochs
        if config.instance_noise and config.instance_noise_until is None:   # fixed now, saved with the config
            self.config = config = dataclasses.replace(config, instance_noise_until=self.total)
        self.checkpoint_failures = 0
        self.last_checkpoint_error = None
        self._fvd_network = None         # I3D for FVD during training, built at the first measurement
        self._real_statistics = None     # weight-free statistics of the training clips, measured once

    # -- one iteration -----------------------------------------------------------------------------
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
        """Terms of G's loss on the mask: the unconditional model's 0.1 * mean(m) (none otherwise)."""
        if self.config.model == "unconditional":
            return losses.mask_prior(mask, self.config.mask_penalty)
        return None

    def step(self, real):
        """One iteration of main.lua on the batch ``real`` (an NDArray (B, 3, T, S, S)): the D step, then
        the G step. Returns the batch-mean losses as floats.

        As in Torch, G's output is handed to D as a separate leaf (``fake``): the D step never reaches
        G, and the G step first collects dL/dfake and then back-propagates it through G in one pass
        (``net:backward(noise, df_dg)``)."""
        self._make_replicas_agree()
        slices = self._slices(real)
        self.discriminator_step(slices)
        self.generator_step(slices)
        self._end_iteration()
        return self.replicas.sum_scalars(self._scalars(slices))

    def _make_replicas_agree(self):
        """Once, before the first step: every replica starts from rank 0's initial weights."""
        if not self._replicas_agree:
            for net in (self.G, self.D):
                self.replicas.broadcast(net.collect_params())
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
        sigma = cfg.instance_noise and cfg.instance_noise * max(0.0, 1.0 - self.iteration / cfg.instance_noise_until)
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
        gradients_into(self.D.collect_params(), d_losses, retain_graph=self.config.g_step == "reuse")
        self.replicas.sum_gradients(self.D.collect_params())
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
        self.replicas.sum_gradients(self.G.collect_params())
        self.trainers["G"].step(1)

    def _end_iteration(self):
        # BN running statistics are updated per replica (each from its slice). Averaged after every
        # iteration so all replicas hold the same state: Gluon's save_parameters averages over contexts
        # anyway, and an exact resume needs the saved state to be the state training continues from.
        for net in (self.G, self.D):
            self.replicas.average(net.collect_params())
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

    def next_batch(self):
        return self.data.next_any_epoch().data[0]

    # -- state ------------------------------------------------------------------------------------
    def meta(self):
        return {"config": self.config.to_dict(), "data": self.data.state_dict(), "run_id": self.run_id,
                "rng": {"kind": "counter", "seed": self.config.seed, "next_iteration": self.iteration},
                "total_iterations": self.total}

    def networks(self):
        """What a checkpoint holds: G and D, and the averaged G when there is one."""
        nets = {"G": self.G, "D": self.D}
        if self.G_average:
            nets["G_ema"] = self.G_average.average
        return nets

    def statistics_inputs(self):
        """Batch k of the generator inputs the averaged G's BatchNorm statistics are estimated on: z drawn
        from (seed, STATISTICS_ITERATION + k), a training batch's size (averaging.py). None for the
        conditional model, whose inputs are real first frames: it keeps the copied statistics."""
        if self.config.is_conditional:
            return None
        rows = min(self.local_batch, 64)
        return lambda k: generator_inputs(self.config, [self.config.seed, STATISTICS_ITERATION + k], rows)

    def sampling_generator(self):
        """The G that samples come from: G, or a copy of the average when training keeps one (made once
        per iteration: the sample grid, FVD and the checkpoint of one iteration share it)."""
        if not self.G_average:
            return self.G
        if self._snapshot is None or self._snapshot[0] != self.iteration:
            self._snapshot = (self.iteration, self.G_average.snapshot())
        return self._snapshot[1]

    def save_checkpoint(self):
        networks = self.networks()
        if self.G_average:      # what sampling uses: the average with its own BatchNorm statistics
            networks["G_ema"] = self.sampling_generator()
        return checkpoint.save(self.run_dir, self.iteration, networks, self.trainers,
                               self.meta(), keep=self.config.keep_checkpoints)

    def restore(self, checkpoint_dir):
        meta = checkpoint.load_into(checkpoint_dir, self.networks(), self.trainers, ctx=self.contexts)
        self.iteration = int(meta["iteration"])
        self.run_id = meta.get("run_id")     # None for checkpoints written before run ids existed
        state = meta["data"]
        if not self.replicas.is_chief:
            state = dict(state, bad={})   # the checkpoint holds rank 0's bad clips; the position is shared
        self.data.load_state_dict(state)
        return meta

    @classmethod
    def resume(cls, source, progress=True, iterations=None, steal_lock=False, **config_overrides):
        """Continue from ``source`` (a Checkpoint, a run folder or a checkpoint folder). ``iterations`` may
        extend the run."""
        ckpt = checkpoint.opened(source)
        values = dict(ckpt.meta["config"], **config_overrides)
        if iterations is not None:
            values["iterations"] = iterations
        run = cls(TrainConfig.from_dict(values), os.path.dirname(os.path.abspath(ckpt.folder)), progress=progress,
                  new_run=False, steal_lock=steal_lock)
        run.restore(ckpt.folder)
        log.info("resumed %s at iteration %d", ckpt, run.iteration)
        return run

    # -- the loop ---------------------------------------------------------------------------------
    def run(self):
        """Train to ``self.total`` iterations. In distributed training only rank 0 writes files (logs,
        samples, checkpoints); every worker runs the same loop."""
        from tqdm import tqdm
        from .tblog import ScalarLog
        cfg, chief = self.config, self.replicas.is_chief
        if chief:
            try:
                write_text_atomic(os.path.join(self.run_dir, "config.json"), cfg.to_json())
            except OSError as e:
                raise run_folder.RunFolderError(f"{os.path.join(self.run_dir, 'config.json')}: cannot write "
                                                f"({e.strerror or e})") from None
        scalars = ScalarLog(self.run_dir, start=self.iteration) if chief else None
        n_fixed = min(self.local_batch, 16)
        fixed = None          # the generator inputs of the sample grids, fixed for the whole run
        bar = tqdm(total=self.total, initial=self.iteration, disable=not (self.progress and chief), unit="it",
                   dynamic_ncols=True, desc="train")
        started, last = time.time(), self.iteration
        try:
            while self.iteration < self.total:
                real = self.next_batch()
                if fixed is None:
                    fixed = [a[:n_fixed].asnumpy() for a in self.generator_inputs(real, SAMPLE_GRID_ITERATION)]
                values = self.step(real)
                bar.update(1)
                if not chief:
                    continue
                if self.iteration % cfg.log_every == 0 or self.iteration == self.total:
                    elapsed = time.time() - started
                    values["clips_per_s"] = (self.iteration - last) * cfg.batch_size / max(elapsed, 1e-9)
                    values["bad_clips"] = len(self.data.bad)
                    started, last = time.time(), self.iteration
                    scalars.write(self.iteration, values)
                    bar.set_postfix(D=f"{values['loss_d']:.3f}", G=f"{values['loss_g_adv']:.3f}",
                                    m=f"{values['mask_mean']:.2f}", refresh=False)
                if cfg.sample_every and (self.iteration % cfg.sample_every == 0 or self.iteration == self.total):
                    try:
                        outputs, grids = self.write_sample_grid(fixed)
                        scalars.write(self.iteration, self.sample_statistics(outputs))
                        # TensorBoard's Images tab: the first frame of each grid (the GIFs hold them all)
                        scalars.images(self.iteration, {name: frames[0] for name, frames in grids.items()})
                    except OSError as e:          # a full disk costs the picture, not the run
                        log.error("could not write the sample grid of iteration %d: %s", self.iteration,
                                  e.strerror or e)
                if cfg.fvd_every and (self.iteration % cfg.fvd_every == 0 or self.iteration == self.total):
                    scalars.write(self.iteration, {"fvd": self.frechet_video_distance()})
                if self.iteration % cfg.checkpoint_every == 0 or self.iteration == self.total:
                    self._checkpoint(final=self.iteration == self.total)
        finally:
            bar.close()
            if scalars:
                scalars.close()
            self.data.close()
            if chief:
                run_folder.release_ownership(self.run_dir)
        # Workers leave together: the chief's final checkpoint is on disk before any worker exits.
        self.replicas.barrier()
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
            # The caller learns of it from checkpoint_failures (the CLI's exit status).
            self.checkpoint_failures += 1
            self.last_checkpoint_error = str(e)
            log.error("%s", e)

    def frechet_video_distance(self):
        """FVD of the generator now (inference mode, a fixed z set) against the training clips; the I3D
        network and the real clips' statistics are made once (the statistics cached in the run folder)."""
        cfg = self.config
        if self._fvd_network is None:
            self._fvd_network = video_networks.i3d(cfg.fvd_i3d_weights, normalisation=cfg.fvd_i3d_input,
                                                   ctx=self.contexts[0])
        value, _, _ = evaluation.frechet_video_distance(
            self._fvd_network, self.sampling_generator(), cfg, resolve_data_list(cfg), cfg.fvd_samples, seed=cfg.seed,
            cache=os.path.join(self.run_dir, "fvd_real_stats.npz"), data_root=cfg.data_root, ctx=self.contexts[0])
        log.info("iteration %d: FVD %.2f", self.iteration, value)
        return value

    def write_sample_grid(self, generator_inputs):
        """Grid GIFs of the fixed samples (video and mask) for watching training; returns the generator's
        outputs and the grids ({"video": frames, "mask": frames})."""
        out = run_generator(self.sampling_generator(), generator_inputs, ctx=self.contexts[0])
        stem = os.path.join(self.run_dir, "samples", f"iter{self.iteration:08d}")
        grids = {name: media.grid([media.to_frames(c, OUTPUT_RANGES[name]) for c in out[name]]) for name in ("video", "mask")}
        for name, frames in grids.items():
            media.write_gif(f"{stem}_{name}.gif", frames)
        return out, grids

    def sample_statistics(self, outputs):
        """Weight-free statistics of the sample grid's clips, and their ratios to the same statistics of
        up to 256 training clips (measured once), for the logs: ``stats/<name>`` and ``stats/<name>_ratio``."""
        n = len(outputs["video"])
        if self._real_statistics is None:
            real = training_clips(self.config, 256)
            # diversity compares with as many real clips as there are samples (clip_statistics.compare)
            self._real_statistics = dict(clip_statistics(real), diversity=nearest_neighbour_distance(real[:n]))
        values = dict(clip_statistics(outputs["video"], outputs["mask"]),
                      diversity=nearest_neighbour_distance(outputs["video"]))
        logged = {f"stats/{k}": v for k, v in values.items()}
        for name in LOGGED_RATIOS:
            real = self._real_statistics[name]
            logged[f"stats/{name}_ratio"] = values[name] / real if real else 0.0
        return logged


def train(config, run_dir, progress=True):
    """Train from scratch with ``config`` into ``run_dir``; returns the GanTraining."""
    return GanTraining(config, run_dir, progress=progress).run()
