"""The training loop of main.lua (and main_conditional.lua) around the step (step.py): networks and
optimisers built from a configuration, data, exact resume, logs, sample grids, checkpoints.
"""
import dataclasses
import logging
import os
import time
import uuid

import mxnet as mx
from mxnet import gluon

from .. import run_folder
from ..config import TrainConfig, check_fall_before_end
from ..data.sources import make_iterator
from ..errors import SettingError
from ..fsutil import write_text_atomic
from ..generation.inference import SAMPLE_GRID_ITERATION, STATISTICS_ITERATION, generator_inputs
from ..models import data_gradient
from ..models.factory import build_generator, build_networks, prepare
from ..runtime import memory
from ..runtime.context import parse_contexts
from ..runtime.precision import Precision, data_gradient_by_forward
from .averaging import GeneratorAverage
from .monitor import Monitor
from .replicas import Replicas
from .state import RunState
from .step import GanStep

log = logging.getLogger(__name__)


def worker_batch(config, workers, contexts):
    """This worker's share of the global batch, which must split evenly over ``workers`` and then over
    its ``contexts``: an uneven split would give the replicas different BN batch sizes and loss weights."""
    if config.batch_size % workers:
        raise SettingError(f"--batch-size {config.batch_size} does not split evenly over {workers} workers")
    if (config.batch_size // workers) % contexts:
        raise SettingError(f"--batch-size {config.batch_size} does not split evenly over the "
                           f"{contexts * workers} replicas of --ctx {config.ctx}"
                           + (f" x {workers} workers" if workers > 1 else ""))
    return config.batch_size // workers


class GanTraining(GanStep, RunState):
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
        self.local_batch = worker_batch(config, workers, len(self.contexts))
        self.precision = Precision(config.amp, self.contexts)
        if self.replicas.is_chief:
            if new_run:
                run_folder.claim(run_dir, overwrite, steal=steal_lock)
            else:
                run_folder.take_ownership(run_dir, "--resume", steal=steal_lock)
            run_folder.clean_temporaries(run_dir)     # only ever by the folder's owner
        try:
            self._start(config, iterator, rank, workers)
        except BaseException:
            # A run that never started leaves no lock behind (the next trainer would take it over, warning),
            # and no decoding threads of its own.
            if iterator is None and getattr(self, "data", None) is not None:
                self.data.close()
            if self.replicas.is_chief:
                run_folder.release_ownership(run_dir)
            raise

    def _start(self, config, iterator, rank, workers):
        """What __init__ sets up once the run folder is this process's: the networks, the data, the length."""
        self.run_id = uuid.uuid4().hex   # checkpoints carry it: pruning touches only this run's
        log.debug("malloc: %s", memory.keep_freed_memory())    # full-size fp32 steps 5-18 % faster (memory.py)
        self.precision.enable()          # before the networks exist (AMP rewrites operators)
        data_gradient.enable(data_gradient_by_forward(self.precision.dtype))     # also before they exist
        mx.random.seed(config.seed)    # initialisation only; training draws are counter-based
        self._build_networks(config)
        self._replicas_agree = False     # rank 0's initial weights are broadcast before the first step
        self.data = iterator or make_iterator(config, part_index=rank, num_parts=workers)
        self.iteration = 0
        self.total = config.iterations or 100 * self.data.batches_per_epoch   # niter = 100 epochs
        if config.instance_noise and config.instance_noise_until is None:   # fixed now, saved with the config
            self.config = config = dataclasses.replace(config, instance_noise_until=self.total)
        if config.lr_fall_from is not None and config.lr_fall_until is None:   # the same for falling rates
            check_fall_before_end(config.lr_fall_from, self.total)     # known only now without --iterations
            self.config = config = dataclasses.replace(config, lr_fall_until=self.total)
        self.checkpoint_failures = 0
        self.last_checkpoint_error = None
        self.monitor = Monitor(config, self.run_dir, self.contexts[0])

    def _build_networks(self, config):
        """G, D, their Adam optimisers and, with ``g_ema``, the moving average of G's weights."""
        self.G, self.D = build_networks(config, self.precision.dtype, self.contexts[0].device_type)
        prepare(self.G, self.contexts,
                config.hybridize and self.precision.hybridize_generator(self.G.form))
        prepare(self.D, self.contexts, config.hybridize)
        self.params = {"G": self.G.collect_params(), "D": self.D.collect_params()}
        adam = dict(beta1=config.beta1, beta2=config.beta2, epsilon=config.epsilon, wd=0.0)
        # The optimiser runs on every replica, on gradients Replicas has summed (see replicas.py).
        self.trainers = {name: gluon.Trainer(params, "adam", dict(adam, learning_rate=config.rates[name]), kvstore=None)
                         for name, params in self.params.items()}
        self.precision.attach(self.trainers)
        self.G_average = None            # the moving average of G's weights that samples come from (g_ema)
        self._snapshot = None            # (iteration, the average made runnable at that iteration)
        if config.g_ema:
            def build():
                return prepare(build_generator(config, self.G.form), self.contexts, config.hybridize)
            self.G_average = GeneratorAverage(self.G, build(), config.g_ema, build, self.statistics_inputs())

    def next_batch(self):
        return self.data.next_any_epoch().data[0]

    def statistics_inputs(self):
        """Batch k of the generator inputs the averaged G's BatchNorm statistics are estimated on: z drawn
        from (seed, STATISTICS_ITERATION + k), a training batch's size (training/averaging.py). None for the
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

    # -- the loop ---------------------------------------------------------------------------------
    def run(self):
        """Train to ``self.total`` iterations. In distributed training only rank 0 writes files (logs,
        samples, checkpoints); every worker runs the same loop."""
        from tqdm import tqdm

        from .tensorboard_log import ScalarLog
        chief = self.replicas.is_chief
        if chief:
            write_config(self.run_dir, self.config)
        scalars = ScalarLog(self.run_dir, start=self.iteration) if chief else None
        fixed = None          # the generator inputs of the sample grids, fixed for the whole run
        bar = tqdm(total=self.total, initial=self.iteration, disable=not (self.progress and chief), unit="it",
                   dynamic_ncols=True, desc="train")
        self._clock = (time.time(), self.iteration)     # (when, at which iteration) throughput was last logged
        try:
            while self.iteration < self.total:
                real = self.next_batch()
                if fixed is None:
                    fixed = [a[:min(self.local_batch, 16)].asnumpy()
                             for a in self.generator_inputs(real, SAMPLE_GRID_ITERATION)]
                values = self.step(real)
                bar.update(1)
                if chief:
                    self._after_step(values, scalars, bar, fixed)
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

    def _due(self, every):
        """Whether a task run every ``every`` iterations is due now: the last iteration always is, unless
        ``every`` is 0 (never; sample grids and FVD only - checkpoints and logs take >= 1, TrainConfig)."""
        return bool(every) and (self.iteration % every == 0 or self.iteration == self.total)

    def _after_step(self, values, scalars, bar, fixed):
        """The chief's cadences after a step: logs, sample grids with their statistics, FVD, checkpoints."""
        cfg = self.config
        if self._due(cfg.log_every):
            started, last = self._clock
            values["clips_per_s"] = (self.iteration - last) * cfg.batch_size / max(time.time() - started, 1e-9)
            values["bad_clips"] = len(self.data.bad)
            values.update(lr_g=self.trainers["G"].learning_rate, lr_d=self.trainers["D"].learning_rate)  # as last used
            self._clock = (time.time(), self.iteration)
            scalars.write(self.iteration, values)
            bar.set_postfix(D=f"{values['loss_d']:.3f}", G=f"{values['loss_g_adv']:.3f}",
                            m=f"{values['mask_mean']:.2f}", refresh=False)
        if self._due(cfg.sample_every):
            try:
                outputs, grids = self.monitor.sample_grid(self.sampling_generator(), fixed, self.iteration)
                scalars.write(self.iteration, self.monitor.sample_statistics(outputs))
                # TensorBoard's Images tab: the first frame of each grid (the GIFs hold them all)
                scalars.images(self.iteration, {name: frames[0] for name, frames in grids.items()})
            except OSError as e:          # a full disk costs the picture, not the run
                log.error("could not write the sample grid of iteration %d: %s", self.iteration, e.strerror or e)
        if self._due(cfg.fvd_every):
            scalars.write(self.iteration, {"fvd": self.monitor.frechet_video_distance(self.sampling_generator(),
                                                                                      self.iteration)})
        if self._due(cfg.checkpoint_every):
            self._checkpoint(final=self.iteration == self.total)


def write_config(run_dir, config):
    """The run's ``config.json``, written atomically; one line naming it if it cannot be."""
    path = os.path.join(run_dir, "config.json")
    try:
        write_text_atomic(path, config.to_json())
    except OSError as e:
        raise run_folder.RunFolderError(f"{path}: cannot write ({e.strerror or e})") from None


def train(config, run_dir, progress=True):
    """Train from scratch with ``config`` into ``run_dir``; returns the GanTraining."""
    return GanTraining(config, run_dir, progress=progress).run()
