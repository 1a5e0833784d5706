"""What training watches besides its losses: sample grids of fixed generator inputs, their weight-free
statistics against the training clips, and FVD. Each reads the generator samples come from (the
averaged G when the run keeps one) and writes into the run folder; none changes training."""
import logging
import os

from ..data.sources import resolve_data_list, training_clips
from ..generation import media
from ..generation.inference import OUTPUT_RANGES, run_generator
from ..metrics import evaluation, video_networks
from ..metrics.clip_statistics import clip_statistics, nearest_neighbour_distance

log = logging.getLogger(__name__)
# statistics logged as generated / real ratios (metrics/clip_statistics.py; report.py draws them)
LOGGED_RATIOS = ("checkerboard", "flicker", "motion", "colour_spread", "colour_std", "end_contrast", "diversity")


class Monitor:
    """The sample grids, statistics and FVD of a run of ``config`` in ``run_dir``, computed on ``ctx``."""

    def __init__(self, config, run_dir, ctx):
        self.config, self.run_dir, self.ctx = config, run_dir, ctx
        self._fvd_network = None         # I3D for FVD during training, built at the first measurement
        self._real_statistics = None     # weight-free statistics of the training clips, measured once

    def sample_grid(self, G, generator_inputs, iteration):
        """Grid GIFs of the fixed samples (video and mask) for watching training; returns the generator's
        outputs and the grids ({"video": frames, "mask": frames})."""
        out = run_generator(G, generator_inputs, ctx=self.ctx)
        stem = os.path.join(self.run_dir, "samples", f"iter{iteration:08d}")
        grids = {name: media.grid([media.to_frames(c, OUTPUT_RANGES[name]) for c in out[name]])
                 for name in ("video", "mask")}
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

    def frechet_video_distance(self, G, iteration):
        """FVD of ``G`` (inference mode, a fixed z set) against the training clips; the I3D network and the
        real clips' statistics are made once (the statistics cached in the run folder)."""
        cfg = self.config
        if self._fvd_network is None:
            self._fvd_network = video_networks.i3d(cfg.fvd_i3d_weights, normalisation=cfg.fvd_i3d_input, ctx=self.ctx)
        value, _, _ = evaluation.frechet_video_distance(
            self._fvd_network, G, cfg, resolve_data_list(cfg), cfg.fvd_samples, seed=cfg.seed,
            cache=os.path.join(self.run_dir, "fvd_real_stats.npz"), data_root=cfg.data_root, ctx=self.ctx)
        log.info("iteration %d: FVD %.2f", iteration, value)
        return value
