"""Classifier weights from other frameworks -> GluonCV's parameter files, for ``evaluate``.

``chainer_c3d``: a Chainer C3D saved with ``serializers.save_npz`` (the family TGAN's UCF-101 Inception
Score classifier belongs to: links conv1a, conv2a, conv3a, conv3b, conv4a, conv4b, conv5a, conv5b,
fc6, fc7, fc8, each with W and b) -> GluonCV's ``c3d_kinetics400`` definition (conv0..conv7,
dense0..dense2). Chainer's Convolution3D W is (out, in, t, h, w) and Linear W is (out, in): MXNet's
layouts, so arrays are copied as they are.
"""
import numpy as np

from ..errors import FileProblem
from ..fsutil import atomic_path
from .video_networks import _gluoncv_model

CHAINER_C3D_LINKS = ["conv1a", "conv2a", "conv3a", "conv3b", "conv4a", "conv4b", "conv5a", "conv5b", "fc6", "fc7", "fc8"]


def _find(arrays, link, kind):
    for key in (f"{link}/{kind}", f"predictor/{link}/{kind}"):
        if key in arrays:
            return arrays[key]
    return None


def chainer_c3d(npz_path, out_path):
    """Write GluonCV C3D parameters converted from ``npz_path``; returns the number of classes."""
    import mxnet as mx
    try:
        arrays = dict(np.load(npz_path, allow_pickle=False))
    except (OSError, ValueError) as e:
        raise FileProblem(npz_path, f"not a readable .npz file ({e})") from e
    found = [(_find(arrays, link, "W"), _find(arrays, link, "b")) for link in CHAINER_C3D_LINKS]
    missing = [f"{link}/{kind}" for link, pair in zip(CHAINER_C3D_LINKS, found)
               for kind, array in zip("Wb", pair) if array is None]
    if missing:
        raise FileProblem(npz_path, f"not a Chainer C3D: missing {', '.join(missing)} (has {', '.join(sorted(arrays)[:8])}...)")
    classes = found[-1][0].shape[0]
    net = _gluoncv_model("c3d_kinetics400", nclass=classes)
    net.initialize()
    params = [p for p in net.collect_params().values()]
    for (weight, bias), w_param, b_param, link in zip(found, params[0::2], params[1::2], CHAINER_C3D_LINKS):
        for param, array in ((w_param, weight), (b_param, bias)):
            if tuple(param.shape) != array.shape:
                raise FileProblem(npz_path, f"{link} has shape {array.shape}, GluonCV's C3D needs {tuple(param.shape)}")
            param.set_data(mx.nd.array(array))
    with atomic_path(out_path) as tmp:
        net.save_parameters(tmp)
    return classes
