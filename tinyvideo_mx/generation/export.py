"""Export a trained generator for MXNet serving: ``<prefix>-symbol.json`` + ``<prefix>-0000.params``.

The exported graph takes one input, ``data`` (z rows (N, nz) for the unconditional model; images
(N, 3, S, S) in [-1, 1] for the conditional one; with conditional noise, ``data0`` = images and
``data1`` = z), and has four outputs in this order: video,
foreground, mask, background. BN runs with its running statistics (inference). A ``<prefix>-meta.json``
records the configuration and the output order. Reload with::

    net = mx.gluon.SymbolBlock.imports(prefix + "-symbol.json", ["data"], prefix + "-0000.params")

(``serving.import_generator`` does that, with the input names from the meta file.)
"""
import json
import os

import mxnet as mx

from .inference import OUTPUTS, input_shapes, load_generator


def export_generator(checkpoint_path, prefix):
    """Export the generator of a checkpoint; returns the paths of the symbol, params and meta files."""
    G, config = load_generator(checkpoint_path, hybridize=True)
    shapes = input_shapes(config)
    G(*(mx.nd.zeros(s) for s in shapes))   # one forward builds the cached graph to export
    os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
    G.export(prefix, epoch=0)
    names = ["data"] if len(shapes) == 1 else [f"data{i}" for i in range(len(shapes))]   # Gluon's naming
    meta = {"model": config.model, "inputs": names, "input_shapes": [list(s) for s in input_shapes(config, 0)],
            "outputs": list(OUTPUTS), "config": config.to_dict()}
    with open(prefix + "-meta.json", "w") as f:
        json.dump(meta, f, indent=2)
    return prefix + "-symbol.json", prefix + "-0000.params", prefix + "-meta.json"


def export_onnx(prefix, onnx_path, batch=1):
    """The exported symbol/params as an ONNX file (MXNet's exporter uses ``onnx.mapping``, rebuilt by
    compat.onnx_mapping where onnx >= 1.16 lacks it). The batch size is fixed at export time (MXNet's
    exporter takes static shapes)."""
    import numpy as np

    from ..runtime.compat import onnx_mapping
    onnx_mapping()
    with open(prefix + "-meta.json") as f:
        meta = json.load(f)
    shapes = [tuple([batch] + s[1:]) for s in meta["input_shapes"]]
    mx.onnx.export_model(prefix + "-symbol.json", prefix + "-0000.params", shapes, [np.float32] * len(shapes), onnx_path)
    _tidy_onnx(prefix + "-symbol.json", onnx_path)
    return onnx_path


def _tidy_onnx(symbol_path, onnx_path):
    """MXNet's exporter lists the outputs in its own order under internal names, and lists every weight
    as a graph input too. Name the outputs video/foreground/mask/background, in that order, and keep
    only the real inputs (weights stay initializers)."""
    import onnx
    with open(symbol_path) as f:
        symbol = json.load(f)
    heads = [symbol["nodes"][h[0]]["name"] for h in symbol["heads"]]
    rename = {}
    model = onnx.load(onnx_path)
    by_name = {o.name: o for o in model.graph.output}
    for head, name in zip(heads, OUTPUTS):
        match = by_name.get(head) or next(o for n, o in by_name.items() if n.startswith(head))
        rename[match.name] = name
    for node in model.graph.node:
        node.output[:] = [rename.get(o, o) for o in node.output]
        node.input[:] = [rename.get(i, i) for i in node.input]
    outputs = sorted(model.graph.output, key=lambda o: OUTPUTS.index(rename[o.name]))
    for o in outputs:
        o.name = rename[o.name]
    del model.graph.output[:]
    model.graph.output.extend(outputs)
    weights = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    onnx.checker.check_model(model)
    onnx.save(model, onnx_path)


def export_mar(prefix, export_dir, name="vgan"):
    """A model archive for multi-model-server (``model-archiver`` 1.0.x): the exported generator plus
    ``serving/mms_handler.py``. Returns the path of ``<name>.mar``."""
    import shutil
    import subprocess
    import tempfile

    from ..serving import mms_handler
    with tempfile.TemporaryDirectory() as staging:
        for suffix in ("-symbol.json", "-0000.params", "-meta.json"):
            shutil.copy(prefix + suffix, os.path.join(staging, "generator" + suffix))
        shutil.copy(mms_handler.__file__, os.path.join(staging, "tinyvideo_mms_handler.py"))
        os.makedirs(export_dir, exist_ok=True)
        subprocess.run(["model-archiver", "--model-name", name, "--model-path", staging,
                        "--handler", "tinyvideo_mms_handler:handle", "--export-path", export_dir,
                        "--runtime", "python3", "-f"], check=True, capture_output=True, text=True)
    return os.path.join(export_dir, f"{name}.mar")
