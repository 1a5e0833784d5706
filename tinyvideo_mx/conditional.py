"""The conditional model of main_conditional.lua (spec section 4): one still image -> a 32-frame future.

An encoder (3->128->256->512->1024, 4x4 stride 2, ReLU; BN eps 1e-3 on all but the first) maps the
image to a 1024 x S/16 x S/16 code that feeds both streams: a 2-D background stream (1024->512->256->
128->3) and a 3-D foreground stream (1024->1024 with a 2x1x1 kernel, ->512->256->128, then the video
and mask heads), combined as in the unconditional model. There is no noise (the generator is a
deterministic function of the image) and no mask prior; G's extra loss is 10 * mean|G(x0)[:, :, 0] - x0|.
The discriminator is the unconditional one with doubled widths (3->128->...->1024->2).

Beyond the original: ``noise > 0`` joins a z of that size to the code (broadcast over its positions)
for stochastic futures; off by default so the default stays faithful.
"""
import json
import os

import cv2
import numpy as np
from mxnet.gluon import nn

from . import checkpoint, media
from .errors import FileProblem, SettingError
from .image_input import ImageTooLarge, check_pixels, decode
from .layers import D_BN_EPS, batchnorm2d, conv_kwargs
from .networks import Discriminator, background_stream, compose, first_kernel, foreground_stream, split_head


class Encoder(nn.HybridBlock):
    """Image (N, 3, S, S) -> code (N, 8*ngf, S/16, S/16) (main_conditional.lua:63-72)."""

    def __init__(self, ngf=128, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.body = nn.HybridSequential(prefix="")
            in_channels = 3
            for i, ch in enumerate([ngf, ngf * 2, ngf * 4, ngf * 8]):
                self.body.add(nn.Conv2D(ch, 4, 2, 1, **conv_kwargs(in_channels)))
                if i > 0:
                    self.body.add(batchnorm2d(D_BN_EPS, ch))
                self.body.add(nn.Activation("relu"))
                in_channels = ch

    def hybrid_forward(self, F, image):
        return self.body(image)


def fork(F, x):
    """Two uses of ``x`` whose gradients oneDNN can add. Feeding one tensor to both streams directly
    fails in hybridized backward ("could not create a primitive descriptor for a sum primitive": the
    streams return differently laid-out gradients); through concat + split both gradients come back
    from one plain op. (``* 1`` or ``identity`` copies do not help.)"""
    return F.split(F.concat(x, x, dim=0), num_outputs=2, axis=0)


class ConditionalGenerator(nn.HybridBlock):
    """``G(image)`` (or ``G(image, z)`` with ``noise > 0``) -> (video, foreground, mask, background)."""

    def __init__(self, ngf=128, frames=32, size=64, noise=0, **kwargs):
        super().__init__(**kwargs)
        kt, _, _ = first_kernel(frames, size)
        self.noise, self.size, self.frames = noise, size, frames
        code = ngf * 8 + noise
        with self.name_scope():
            self.encoder = Encoder(ngf)
            self.background = background_stream(code, [ngf * 4, ngf * 2, ngf], 4, 2, 1)
            self.foreground = foreground_stream(code, [ngf * 8, ngf * 4, ngf * 2, ngf], (kt, 1, 1))

    def hybrid_forward(self, F, image, z=None):
        code = self.encoder(image)
        if self.noise:
            spread = F.broadcast_like(F.reshape(z, shape=(0, 0, 1, 1)), code, lhs_axes=(2, 3), rhs_axes=(2, 3))
            code = F.concat(code, spread, dim=1)
        for_background, for_foreground = fork(F, code)
        background = self.background(for_background)
        head = self.foreground(F.expand_dims(for_foreground, axis=2))     # View(-1, 1024, 1, 4, 4)
        foreground, mask = split_head(F, head)
        return compose(F, foreground, mask, background), foreground, mask, background


class ConditionalDiscriminator(Discriminator):
    """The unconditional discriminator at the conditional model's doubled widths (ndf = 128)."""


def conditional_overrides(preset, overrides):
    """CLI options for ``train --conditional``: the model, and the original's widths (128) and batch
    (32) unless the preset or the user says otherwise."""
    from .config import PRESETS
    out = dict(overrides, model="conditional")
    for key, original in (("ngf", 128), ("ndf", 128), ("batch_size", 32)):
        if out.get(key) is None and key not in PRESETS[preset]:
            out[key] = original
    return out


class ImageError(FileProblem):
    """An input image that cannot be read."""


def load_image(path, size):
    """Any image file -> (3, size, size) float32 in [-1, 1] (see ``decode_image``)."""
    if not os.path.isfile(path):
        raise ImageError(path, "file not found")
    return decode_image(np.fromfile(path, np.uint8), size, path)


def decode_image(data, size, name="<bytes>"):
    """Encoded image bytes -> (3, size, size) float32 in [-1, 1]: centre square crop (the stabiliser's
    short-side resize + centre crop) and area averaging (the data path's down-scaling)."""
    if not len(data):
        raise ImageError(name, "empty file")
    try:
        check_pixels(data, name)          # from the header, before any decoding
    except ImageTooLarge as e:
        raise ImageError(name, e.reason) from None
    except FileProblem:
        raise ImageError(name, "not a readable image") from None
    image = decode(data, name)
    if image is None:
        raise ImageError(name, "not a readable image")
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = image[top:top + side, left:left + side, ::-1].astype(np.float32) / 255.0
    small = cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA)
    return small.transpose(2, 0, 1) * 2.0 - 1.0


def sample_conditional(checkpoint_path, images, out_dir, fps=media.DEFAULT_FPS, scale=2, normalize=None, seed=0, ctx=None):
    """Predict the future of each image; write one set of files per image and grids. Returns a summary."""
    from .sampling import load_generator, mask_statistics, run_generator, write_outputs
    if not images:
        raise SettingError("sample --conditional needs at least one --image")
    G, config = load_generator(checkpoint_path, ctx)
    if config.model != "conditional":
        raise SettingError(f"{checkpoint_path} holds an unconditional generator: drop --conditional/--image")
    batch = np.stack([load_image(p, config.size) for p in images])
    inputs = [batch]
    if config.cond_noise:
        inputs.append(np.random.default_rng(seed).standard_normal((len(images), config.cond_noise)).astype(np.float32))
    outputs = run_generator(G, inputs, ctx)
    files = write_outputs(out_dir, outputs, fps, scale, normalize=normalize)
    summary = {"checkpoint": checkpoint.resolve(checkpoint_path), "images": list(images), **mask_statistics(outputs["mask"]),
               "clips": {f"{i:04d}": p for i, p in enumerate(images)}, "files": len(files)}
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    return summary
