"""Sampling (generate.lua, and what it lacked): videos, foregrounds, masks and backgrounds from a
checkpoint, with BN in inference mode (running statistics, as ``net:evaluate()``), reproducible per seed.

Clip i of ``sample(seed=s, n=N)`` is always the i-th row of ``default_rng(s).standard_normal((N, nz))``,
so asking for more clips never changes the first ones.
"""
import json
import os

import numpy as np

from .. import checkpoint
from ..errors import SettingError
from ..metrics.clip_statistics import compare
from . import media
from .inference import OUTPUT_RANGES, OUTPUTS, generator_inputs, latents, load_generator, run_generator


def slerp(a, b, steps):
    """Spherical interpolation between two latent vectors (keeps Gaussian-typical norms), ``steps`` points."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    cos = np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    out = []
    for t in np.linspace(0.0, 1.0, steps):
        if omega < 1e-6:
            out.append((1 - t) * a + t * b)
        else:
            out.append((np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega))
    return np.stack(out).astype(np.float32)


def mask_statistics(mask):
    return {"mask_mean": float(mask.mean()), "mask_fraction_above_half": float((mask > 0.5).mean())}


def write_outputs(out_dir, outputs, fps=media.DEFAULT_FPS, scale=1, columns=6, normalize=None, prefix=""):
    """The files generate.lua showed, and more: grids of video, foreground, mask, foreground x mask
    (GIF + MP4) and background (PNG); each clip's video (GIF + MP4), mask (GIF) and background (PNG)."""
    os.makedirs(out_dir, exist_ok=True)
    video, fg, mask, bg = (outputs[k] for k in OUTPUTS)

    def frames(x, value_range):
        return [media.upscale(media.to_frames(v, value_range, normalize), scale) for v in x]

    layers = {"video": frames(video, OUTPUT_RANGES["video"]), "foreground": frames(fg, OUTPUT_RANGES["foreground"]),
              "mask": frames(mask, OUTPUT_RANGES["mask"]),
              "foreground_x_mask": frames(fg * mask, OUTPUT_RANGES["foreground"])}     # a mask in [0, 1] keeps the range
    written = []
    for name, clips in layers.items():
        written += media.write_video(os.path.join(out_dir, f"{prefix}grid_{name}"), media.grid(clips, columns))
    backgrounds = [media.upscale(media.to_frames(b[:, None], OUTPUT_RANGES["background"]), scale)[0] for b in bg]
    background_grid = media.grid([b[None] for b in backgrounds], columns)[0]
    media.write_png(os.path.join(out_dir, f"{prefix}grid_background.png"), background_grid)
    written.append(os.path.join(out_dir, f"{prefix}grid_background.png"))
    clip_dir = os.path.join(out_dir, "clips")
    for i, (v, m, b) in enumerate(zip(layers["video"], layers["mask"], backgrounds)):
        stem = os.path.join(clip_dir, f"{prefix}{i:04d}")
        written += media.write_video(stem + "_video", v, fps)
        written += media.write_video(stem + "_mask", m, fps, formats=("gif",))
        media.write_png(stem + "_background.png", b)
        written.append(stem + "_background.png")
    return written


def sample(source, out_dir, n=16, seed=0, interpolate=None, steps=8, fps=media.DEFAULT_FPS,
           scale=1, normalize=None, ctx=None, reference=None):
    """Write ``n`` samples of the unconditional generator of ``source`` (a Checkpoint, a run or checkpoint
    folder) into ``out_dir``; with ``interpolate=(seed_a, seed_b)`` also a latent walk between the first
    clips of the two seeds; with ``reference`` (real clips) the weight-free statistics of these samples against them.
    Returns a summary dict (also written as summary.json)."""
    ckpt = checkpoint.opened(source)
    G, config = load_generator(ckpt, ctx)
    if config.is_conditional:
        raise SettingError(f"{ckpt} holds a {config.model} generator: use sample --conditional --image ...")
    outputs = run_generator(G, generator_inputs(config, seed, n), ctx)
    files = write_outputs(out_dir, outputs, fps, scale, normalize=normalize)
    summary = {"checkpoint": ckpt.folder, "seed": seed, "n": n, **mask_statistics(outputs["mask"])}
    if reference is not None:
        rows = compare(outputs["video"], reference, outputs["mask"])
        summary["statistics"] = rows
    if interpolate:
        a, b = (latents(s, 1, config.nz)[0] for s in interpolate)
        walk = run_generator(G, slerp(a, b, steps), ctx)
        clips = [media.upscale(media.to_frames(v, normalize=normalize), scale) for v in walk["video"]]
        files += media.write_video(os.path.join(out_dir, "interpolation"), media.grid(clips, columns=steps), fps)
        summary["interpolation"] = {"seeds": list(interpolate), "steps": steps}
    summary["files"] = len(files)
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    return summary
