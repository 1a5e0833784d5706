"""Export a trained generator for MXNet serving: ``<prefix>-symbol.json`` + ``<prefix>-0000.params``.

The exported graph takes one input, ``data`` (z rows (N, nz) for the unconditional model; images
(N, 3, S, S) in [-1, 1] for the conditional one; with conditional noise, ``data0`` = images and
``data1`` = z), and has four outputs in this order: video,
foreground, mask, background. BN runs with its running statistics (inference). A ``<prefix>-meta.json``
records the configuration and the output order. Reload with::

    net = mx.gluon.SymbolBlock.imports(prefix + "-symbol.json", ["data"], prefix + "-0000.params")
"""
import json
import os

import mxnet as mx

from .sampling import OUTPUTS, load_generator


def generator_input_shapes(config, batch=1):
    """Shapes of the generator's inputs: [z], [image] or [image, z]."""
    if config.model == "conditional":
        shapes = [(batch, 3, config.size, config.size)]
        return shapes + [(batch, config.cond_noise)] if config.cond_noise else shapes
    return [(batch, config.nz)]


def export_generator(checkpoint_path, prefix):
    """Export the generator of a checkpoint; returns the paths of the symbol, params and meta files."""
    G, config = load_generator(checkpoint_path, hybridize=True)
    shapes = generator_input_shapes(config)
    G(*(mx.nd.zeros(s) for s in shapes))   # one forward builds the cached graph to export
    os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
    G.export(prefix, epoch=0)
    names = ["data"] if len(shapes) == 1 else [f"data{i}" for i in range(len(shapes))]   # Gluon's naming
    meta = {"model": config.model, "inputs": names, "input_shapes": [list(s) for s in generator_input_shapes(config, 0)],
            "outputs": list(OUTPUTS), "config": config.to_dict()}
    with open(prefix + "-meta.json", "w") as f:
        json.dump(meta, f, indent=2)
    return prefix + "-symbol.json", prefix + "-0000.params", prefix + "-meta.json"


def import_generator(prefix, ctx=None):
    """The exported generator as a ``SymbolBlock`` returning (video, foreground, mask, background)."""
    import warnings
    with open(prefix + "-meta.json") as f:
        names = json.load(f)["inputs"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # "Cannot decide type for the following arguments": harmless
        return mx.gluon.SymbolBlock.imports(prefix + "-symbol.json", names, prefix + "-0000.params",
                                            ctx=ctx or mx.cpu())
