"""Using the conditional model (main_conditional.lua, docs/original.md §4): the training options of
``train --conditional`` and ``sample --conditional`` (the future of each still image). The networks are
in ``models/conditional_networks.py``, image reading in ``data/image_input.py``.
"""
import json
import os

import numpy as np

from . import checkpoint
from .config import PRESETS
from .data.image_input import load_image
from .errors import SettingError
from .generation import media
from .generation.inference import generator_inputs, load_generator, run_generator
from .generation.sampling import mask_statistics, write_outputs


def conditional_overrides(preset, overrides):
    """CLI options for ``train --conditional``: the model, and the original's widths (128) and batch
    (32) unless the preset or the user says otherwise."""
    out = dict(overrides, model="conditional")
    for key, original in (("ngf", 128), ("ndf", 128), ("batch_size", 32)):
        if out.get(key) is None and key not in PRESETS[preset]:
            out[key] = original
    return out


def sample_conditional(source, images, out_dir, fps=media.DEFAULT_FPS, scale=2, normalize=None, seed=0, ctx=None):
    """Predict the future of each image with the generator of ``source`` (a Checkpoint, a run or checkpoint
    folder); write one set of files per image and grids. Returns a summary."""
    if not images:
        raise SettingError("sample --conditional needs at least one --image")
    ckpt = checkpoint.opened(source)
    G, config = load_generator(ckpt, ctx)
    if not config.is_conditional:
        raise SettingError(f"{ckpt} holds an unconditional generator: drop --conditional/--image")
    batch = np.stack([load_image(p, config.size) for p in images])
    outputs = run_generator(G, generator_inputs(config, seed, len(images), batch), ctx)
    files = write_outputs(out_dir, outputs, fps, scale, normalize=normalize)
    summary = {"checkpoint": ckpt.folder, "images": list(images), **mask_statistics(outputs["mask"]),
               "clips": {f"{i:04d}": p for i, p in enumerate(images)}, "files": len(files)}
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    return summary
