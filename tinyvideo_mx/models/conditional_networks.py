"""The conditional model of main_conditional.lua (docs/original.md §4): one still image -> a 32-frame future.

An encoder (3->128->256->512->1024, 4x4 stride 2, ReLU; BN eps 1e-3 on all but the first) maps the
image to a 1024 x S/16 x S/16 code that feeds both streams: a 2-D background stream (1024->512->256->
128->3) and a 3-D foreground stream (1024->1024 with a 2x1x1 kernel, ->512->256->128, then the video
and mask heads), combined as in the unconditional model. There is no noise (the generator is a
deterministic function of the image) and no mask prior; G's extra loss is 10 * mean|G(x0)[:, :, 0] - x0|.
The discriminator is the unconditional one with doubled widths (3->128->...->1024->2).

Beyond the original: ``noise > 0`` joins a z of that size to the code (broadcast over its positions)
for stochastic futures; off by default so the default stays faithful.
"""
from mxnet.gluon import nn

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

    form = "deconvolution"     # its up-sampling layers are always Conv3DTranspose (networks.TRANSPOSED_FORMS)

    def __init__(self, ngf=128, frames=32, size=64, noise=0, **kwargs):
        super().__init__(**kwargs)
        kt, _, _ = first_kernel(frames, size)
        self.noise, self.size, self.frames = noise, size, frames
        code = ngf * 8 + noise
        with self.name_scope():
            self.encoder = Encoder(ngf)
            self.background = background_stream(code, [ngf * 4, ngf * 2, ngf], 4, 2, 1, in_size=(4, 4))
            self.foreground = foreground_stream(code, [ngf * 8, ngf * 4, ngf * 2, ngf], (kt, 1, 1), in_size=(1, 4, 4))

    def hybrid_forward(self, F, image, z=None):
        code = self.encoder(image)
        if self.noise:
            spread = F.broadcast_like(F.reshape(z, shape=(0, 0, 1, 1)), code, lhs_axes=(2, 3), rhs_axes=(2, 3))
            code = F.concat(code, spread, dim=1)
        for_background, for_foreground = fork(F, code)
        background = self.background(for_background)
        head = self.foreground(F.expand_dims(for_foreground, axis=2))     # View(-1, 1024, 1, 4, 4)
        foreground, mask = split_head(F, head)
        return compose(F, foreground, mask, background, self.frames), foreground, mask, background


class ConditionalDiscriminator(Discriminator):
    """The unconditional discriminator at the conditional model's doubled widths (ndf = 128)."""
