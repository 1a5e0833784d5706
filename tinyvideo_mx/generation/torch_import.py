"""``tinyvideo-mx import-t7``: the original's released Torch7 checkpoints -> our checkpoint folder.

The released files (``iter65000_net.t7`` = the generator, ``iter65000_netD.t7`` = the discriminator)
are whole serialized ``nn.Sequential`` networks saved after ``cudnn.convert``, so they hold ``cudnn.*``
modules and ``torch.CudaTensor`` weights. ``torchfile`` reads them without Torch. The network's
wrapping (ConcatTable, FlattenTable, Replicate...) holds no weights, so conversion walks the module tree
depth-first and takes the weighted modules family by family, in order (docs/original.md §1-2):

* generator: 6 VolumetricFullConvolution (4 stages, then the video head 64->3 and the mask head
  64->1, which become our fused 4-channel head), 4 VolumetricBatchNormalization, 5 SpatialFullConvolution,
  4 SpatialBatchNormalization;
* discriminator: 5 VolumetricConvolution, 3 VolumetricBatchNormalization.

Torch's weight layouts are MXNet's ((in, out, k...) for transposed convolutions, (out, in, k...) for
convolutions), so arrays are copied as they are. BN running statistics come along (``running_var``; the
pre-2016 ``running_std`` = 1/sqrt(var + eps) is converted). Sizes (z, widths, frames, frame size) are
read off the weights. The result is a checkpoint folder that ``sample``, ``export``, ``evaluate``,
``finetune-classifier`` and ``train --resume`` (with fresh Adam states) accept.
"""
import dataclasses
import logging
import os
import re

import numpy as np
from mxnet.gluon import nn

from .. import checkpoint
from ..config import TrainConfig
from ..errors import FileProblem
from ..models.factory import build_networks, prepare
from ..models.layers import BatchNorm3D

log = logging.getLogger(__name__)


def read_t7(path):
    """The object a .t7 file holds (torchfile's TorchObject tree)."""
    import torchfile
    if not os.path.isfile(path):
        raise FileProblem(path, "file not found")
    try:
        return torchfile.load(path, utf8_decode_strings=True)
    except Exception as e:      # torchfile raises whatever a truncated or foreign file triggers
        raise FileProblem(path, f"not a readable Torch7 file ({type(e).__name__}: {e})") from e


def class_name(obj):
    name = getattr(obj, "_typename", None)
    if name is None:
        return None
    return name.decode() if isinstance(name, bytes) else name


def weighted_modules(obj):
    """Depth-first (class name, fields) of every module that holds a ``weight``."""
    found = []
    fields = getattr(obj, "_obj", None)
    if not isinstance(fields, dict):
        return found
    if "weight" in fields and fields["weight"] is not None and np.size(fields["weight"]):
        found.append((class_name(obj), fields))
    for child in fields.get("modules") or []:
        found += weighted_modules(child)
    return found


def family(modules, suffix):
    return [fields for name, fields in modules if name and name.split(".")[-1] == suffix]


def _array(fields, key):
    return np.ascontiguousarray(fields[key], dtype=np.float32)


def bn_statistics(fields):
    """(gamma, beta, running_mean, running_var) of a Torch BatchNormalization module."""
    if fields.get("running_var") is not None:
        var = _array(fields, "running_var")
    else:                                   # nn before 2016 stored 1 / sqrt(var + eps)
        var = 1.0 / np.square(_array(fields, "running_std")) - float(fields.get("eps", 1e-5))
    return _array(fields, "weight"), _array(fields, "bias"), _array(fields, "running_mean"), var


def _expect(path, what, items, count):
    if len(items) != count:
        raise FileProblem(path, f"not a VGAN {what}: expected {count} of its layers, found {len(items)}")


def _layers(block, kind):
    """Our blocks of class ``kind`` (or a subclass: D's StridedConv3D is an nn.Conv3D) inside a
    HybridSequential, in order (BatchNorm3D -> its inner BN)."""
    return [child.bn if kind is BatchNorm3D else child for child in block._children.values()
            if isinstance(child, kind)]


def _set(param, array, path, torch_name):
    if tuple(param.shape) != array.shape:
        raise FileProblem(path, f"{torch_name} has shape {array.shape}, the network needs {tuple(param.shape)}")
    param.set_data(array)


def _set_bn(bn, fields, path, what):
    for param, array in zip((bn.gamma, bn.beta, bn.running_mean, bn.running_var), bn_statistics(fields)):
        _set(param, array, path, what)


def generator_config(modules, path):
    """Sizes of the generator whose weighted modules (``weighted_modules``) are ``modules``."""
    convs = family(modules, "VolumetricFullConvolution")
    _expect(path, "generator (VolumetricFullConvolution)", convs, 6)
    first = convs[0]
    nz, out = first["weight"].shape[:2]
    kt, kh = int(first["kT"]), int(first["kH"])
    return dict(nz=int(nz), ngf=int(out) // 8, frames=16 * kt, size=16 * kh)


def load_generator_weights(G, modules, path):
    convs, bns = family(modules, "VolumetricFullConvolution"), family(modules, "VolumetricBatchNormalization")
    convs2d, bns2d = family(modules, "SpatialFullConvolution"), family(modules, "SpatialBatchNormalization")
    for what, items, count in (("generator (VolumetricFullConvolution)", convs, 6),
                               ("generator (VolumetricBatchNormalization)", bns, 4),
                               ("generator (SpatialFullConvolution)", convs2d, 5),
                               ("generator (SpatialBatchNormalization)", bns2d, 4)):
        _expect(path, what, items, count)
    heads = {int(f["nOutputPlane"]): f for f in convs[4:]}
    if sorted(heads) != [1, 3]:
        raise FileProblem(path, f"not a VGAN generator: the last two 3-D layers should output 3 and 1 "
                                f"channels, they output {sorted(heads)}")
    ours = _layers(G.foreground, nn.Conv3DTranspose)
    for i, (layer, fields) in enumerate(zip(ours[:4], convs[:4])):
        _set(layer.weight, _array(fields, "weight"), path, f"foreground layer {i + 1} weight")
        _set(layer.bias, _array(fields, "bias"), path, f"foreground layer {i + 1} bias")
    # Fused head: channels 0-2 = the video head (gen_net), channel 3 = the mask head (mask_out).
    head = ours[4]
    _set(head.weight, np.concatenate([_array(heads[3], "weight"), _array(heads[1], "weight")], axis=1), path, "heads' weights")
    _set(head.bias, np.concatenate([_array(heads[3], "bias"), _array(heads[1], "bias")]), path, "heads' biases")
    for i, (bn, fields) in enumerate(zip(_layers(G.foreground, BatchNorm3D), bns)):
        _set_bn(bn, fields, path, f"foreground BN {i + 1}")
    for i, (layer, fields) in enumerate(zip(_layers(G.background, nn.Conv2DTranspose), convs2d)):
        _set(layer.weight, _array(fields, "weight"), path, f"background layer {i + 1} weight")
        _set(layer.bias, _array(fields, "bias"), path, f"background layer {i + 1} bias")
    for i, (bn, fields) in enumerate(zip(_layers(G.background, nn.BatchNorm), bns2d)):
        _set_bn(bn, fields, path, f"background BN {i + 1}")


def discriminator_config(modules, path):
    convs = family(modules, "VolumetricConvolution")
    _expect(path, "discriminator (VolumetricConvolution)", convs, 5)
    last = convs[-1]
    return dict(ndf=int(convs[0]["nOutputPlane"]), frames=16 * int(last["kT"]), size=16 * int(last["kH"]))


def load_discriminator_weights(D, modules, path):
    convs, bns = family(modules, "VolumetricConvolution"), family(modules, "VolumetricBatchNormalization")
    _expect(path, "discriminator (VolumetricConvolution)", convs, 5)
    _expect(path, "discriminator (VolumetricBatchNormalization)", bns, 3)
    ours = _layers(D.features, nn.Conv3D) + [D.classifier]
    for i, (layer, fields) in enumerate(zip(ours, convs)):
        _set(layer.weight, _array(fields, "weight"), path, f"discriminator layer {i + 1} weight")
        if layer.bias is not None:
            _set(layer.bias, _array(fields, "bias"), path, f"discriminator layer {i + 1} bias")
    for i, (bn, fields) in enumerate(zip(_layers(D.features, BatchNorm3D), bns)):
        _set_bn(bn, fields, path, f"discriminator BN {i + 1}")


def iteration_of(path):
    match = re.search(r"iter(\d+)_net", os.path.basename(path))
    return int(match.group(1)) if match else 0


def sibling_discriminator(generator_path):
    candidate = re.sub(r"_net\.t7$", "_netD.t7", generator_path)
    return candidate if candidate != generator_path and os.path.isfile(candidate) else None


def import_t7(generator_path, run_dir, discriminator_path=None):
    """Convert the Torch7 generator (and discriminator; by default ``*_netD.t7`` beside the generator)
    into a checkpoint folder in ``run_dir``; returns its path."""
    import mxnet as mx
    discriminator_path = discriminator_path or sibling_discriminator(generator_path)
    g_modules = weighted_modules(read_t7(generator_path))
    sizes = generator_config(g_modules, generator_path)
    d_modules = None
    if discriminator_path:
        d_modules = weighted_modules(read_t7(discriminator_path))
        d_sizes = discriminator_config(d_modules, discriminator_path)
        if (d_sizes["frames"], d_sizes["size"]) != (sizes["frames"], sizes["size"]):
            raise FileProblem(discriminator_path, f"judges {d_sizes['frames']}x{d_sizes['size']}px clips, the "
                                                  f"generator makes {sizes['frames']}x{sizes['size']}px")
        sizes["ndf"] = d_sizes["ndf"]
    config = TrainConfig(**sizes)
    # built in the forms whose layers are the Torch modules one for one (every form has the same parameters)
    G, D = build_networks(dataclasses.replace(config, g_form="deconvolution", d_form="strided"))
    for net in (G, D):
        prepare(net, [mx.cpu()], hybridize=False)
    load_generator_weights(G, g_modules, generator_path)
    nets = {"G": G}
    if d_modules is not None:
        load_discriminator_weights(D, d_modules, discriminator_path)
        nets["D"] = D
    sources = {"G": os.path.abspath(generator_path),
               "D": os.path.abspath(discriminator_path) if d_modules is not None else None}
    meta = {"config": config.to_dict(), "imported_from": sources, "data": {"next_batch": 0, "bad": {}},
            "rng": {"kind": "counter", "seed": config.seed, "next_iteration": 0}}
    path = checkpoint.save(run_dir, iteration_of(generator_path), nets, None, meta, keep=0)
    log.info("imported %s -> %s", generator_path, path)
    return path
