"""What a checkpoint of a training run holds (checkpoint.py writes and verifies it) and how a run
continues exactly from one: the networks and optimiser states, the iteration, the data iterator's
position, the configuration and the run's id."""
import logging
import os

from .. import checkpoint
from ..config import TrainConfig

log = logging.getLogger(__name__)


class RunState:
    """Saving and restoring ``loop.GanTraining``'s state; the run owns what these read: ``G``, ``D``,
    ``G_average``, ``trainers``, ``data``, ``iteration``, ``config``, ``run_id``, ``run_dir``."""

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
        cfg = run.config
        stopped = [f"{name}'s" for name, end in (("G", cfg.lr_end), ("D", cfg.d_lr_end)) if end == 0]
        if stopped and run.total > max(run.iteration, cfg.lr_fall_until):     # an extended run (falling_rate)
            log.warning("%s learning %s fell to 0 at iteration %d (--lr-fall-until): iterations %d-%d leave %s "
                        "weights where they are", " and ".join(stopped), "rates" if len(stopped) > 1 else "rate",
                        cfg.lr_fall_until, max(run.iteration, cfg.lr_fall_until) + 1, run.total,
                        "their" if len(stopped) > 1 else "its")
        return run

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
