"""The video networks FVD and IS are computed with: GluonCV's model definitions, weights from files.

Nothing is downloaded: the networks are built with ``pretrained=False`` (and, for I3D,
``pretrained_base=False``) and ``load_parameters`` reads the file the user names. Which weights make
numbers comparable with the literature is in the README ("Evaluation").

The protocol (how clips become network inputs) is fixed in ``PROTOCOL`` and written next to every
result, because FVD and IS are comparable only under one protocol:

* frames: the first ``frames`` (16) of each clip (I3D/C3D take 16-frame inputs in FVD/IS practice);
* size: each frame resized to ``size`` x ``size`` (I3D 224, C3D 112) with bilinear interpolation
  (OpenCV INTER_LINEAR, half-pixel centres), from the clip's 64 x 64;
* values: clips in [-1, 1] are mapped to what the weights expect: ``imagenet`` (GluonCV's Kinetics
  weights: [0, 1] then ImageNet mean/std), ``symmetric`` ([-1, 1] as is: DeepMind's I3D, as FVD's
  reference code feeds it), ``caffe`` (BGR in 0..255 minus per-channel means 104/117/123: the
  Caffe/Chainer C3D family that TGAN's UCF-101 classifier comes from; TGAN subtracts a mean *clip*,
  so this is an approximation);
* features: I3D's 400 logits (FVD's choice), C3D's softmax class probabilities (IS).
"""
import dataclasses
import warnings

import cv2
import mxnet as mx
import numpy as np

from ..errors import FileProblem
from ..generation.inference import padded_batches

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
CAFFE_MEAN_BGR = np.array([104.0, 117.0, 123.0], np.float32)
NORMALISATIONS = ("imagenet", "symmetric", "caffe")


@dataclasses.dataclass(frozen=True)
class Protocol:
    frames: int
    size: int
    normalisation: str

    def to_dict(self):
        return dataclasses.asdict(self)


PROTOCOL = {"fvd": Protocol(frames=16, size=224, normalisation="imagenet"),
            "is": Protocol(frames=16, size=112, normalisation="imagenet")}


def _gluoncv_model(name, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from gluoncv.model_zoo import get_model
        return get_model(name, pretrained=False, **kwargs)


def load_weights(net, path, what, ctx):
    """Initialise ``net`` from ``path`` (MXNet .params), or randomly with ``path=None`` (tests)."""
    if path is None:
        net.initialize(mx.init.Xavier(magnitude=2), ctx=ctx)
        return net
    try:
        net.load_parameters(str(path), ctx=ctx)
    except (OSError, mx.base.MXNetError, AssertionError, ValueError) as e:
        raise FileProblem(path, f"cannot load {what} weights into GluonCV's definition: "
                                f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from e
    return net


class VideoNetwork:
    """A classification network over clips: ``outputs(chunks)`` -> (N, K) logits."""

    def __init__(self, net, protocol, ctx=None, batch=8):
        if protocol.normalisation not in NORMALISATIONS:
            raise ValueError(f"normalisation must be one of {NORMALISATIONS}, got {protocol.normalisation!r}")
        self.net, self.protocol, self.ctx, self.batch = net, protocol, ctx or mx.cpu(), batch
        net.hybridize(static_alloc=True)

    def preprocess(self, videos):
        """(N, 3, T, S, S) in [-1, 1] -> the network's input (N, 3, frames, size, size), float32."""
        p = self.protocol
        videos = np.asarray(videos, np.float32)
        if videos.ndim != 5 or videos.shape[1] != 3:
            raise ValueError(f"expected clips of shape (N, 3, T, H, W), got {videos.shape}")
        if videos.shape[2] < p.frames:
            raise ValueError(f"clips have {videos.shape[2]} frames; the protocol needs {p.frames}")
        clips = videos[:, :, :p.frames].transpose(0, 2, 3, 4, 1)          # N, T, H, W, C
        n, t, h, w, _ = clips.shape
        if (h, w) != (p.size, p.size):
            frames = [cv2.resize(f, (p.size, p.size), interpolation=cv2.INTER_LINEAR) for f in clips.reshape(-1, h, w, 3)]
            clips = np.stack(frames).reshape(n, t, p.size, p.size, 3)
        if p.normalisation == "imagenet":
            clips = ((clips + 1) / 2 - IMAGENET_MEAN) / IMAGENET_STD
        elif p.normalisation == "caffe":
            clips = (clips + 1) * 127.5
            clips = clips[..., ::-1] - CAFFE_MEAN_BGR
        return np.ascontiguousarray(clips.transpose(0, 4, 1, 2, 3), np.float32)

    def outputs(self, chunks):
        """Logits of all clips the iterable ``chunks`` of (B, 3, T, S, S) arrays holds. The network always
        runs on ``batch`` rows (the last chunk padded): see inference.padded_batches for why."""
        out = []
        for chunk in chunks:
            for rows, (padded,) in padded_batches([self.preprocess(chunk)], self.batch):
                out.append(self.net(mx.nd.array(padded, ctx=self.ctx)).asnumpy()[:rows])
        return np.concatenate(out)


def i3d(weights=None, classes=400, normalisation="imagenet", ctx=None, batch=8, size=None):
    """GluonCV's I3D (Inception-v1, Kinetics-400) for FVD; ``size`` overrides the protocol (tests)."""
    ctx = ctx or mx.cpu()
    net = load_weights(_gluoncv_model("i3d_inceptionv1_kinetics400", nclass=classes, pretrained_base=False),
                       weights, "I3D", ctx)
    protocol = dataclasses.replace(PROTOCOL["fvd"], normalisation=normalisation, size=size or PROTOCOL["fvd"].size)
    return VideoNetwork(net, protocol, ctx, batch)


def c3d(weights=None, classes=101, normalisation="imagenet", ctx=None, batch=8):
    """GluonCV's C3D for the Inception Score (``classes`` = 101 for a UCF-101 classifier)."""
    ctx = ctx or mx.cpu()
    net = load_weights(_gluoncv_model("c3d_kinetics400", nclass=classes), weights, "C3D", ctx)
    return VideoNetwork(net, dataclasses.replace(PROTOCOL["is"], normalisation=normalisation), ctx, batch)


def softmax(logits):
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
