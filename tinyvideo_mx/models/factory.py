"""Build, initialise and hybridize the networks a configuration describes."""
import mxnet as mx

from ..runtime import kernels
from ..runtime.precision import discriminator_form, generator_form
from .conditional_networks import ConditionalDiscriminator, ConditionalGenerator
from .networks import Discriminator, Generator

# static_alloc only. static_shape=True gives silently wrong training in MXNet 1.9.1 when a block runs
# twice before one backward (D on the fake batch, then on the real batch): D learns to call fakes real
# (loss_d_fake climbs past 8 within 30 iterations on the demo). tests/test_training.py compares a
# hybridized training step against an imperative one to keep this from coming back.
HYBRIDIZE_FLAGS = dict(static_alloc=True)


def build_generator(config, form=None):
    """G for ``config.model``; not yet initialised. Every G of a config has the same parameter names
    (prefix ``G_``) whatever its ``form`` (networks.TRANSPOSED_FORMS; default: what ``config.g_form``
    means in float32), so the trained G's and the averaged G's files load into either. It computes on the
    oneDNN kernels ``config.kernels`` names (runtime/kernels.py), as every network of the process."""
    kernels.use(config.kernels)
    if config.is_conditional:
        return ConditionalGenerator(ngf=config.ngf, frames=config.frames, size=config.size,
                                    noise=config.cond_noise, prefix="G_")
    return Generator(nz=config.nz, ngf=config.ngf, frames=config.frames, size=config.size,
                     upsampling=config.upsampling, form=form or generator_form(config.g_form),
                     temporal_padding=config.temporal_padding, mask_bias=config.mask_bias,
                     background_size=config.background_size, prefix="G_")


def build_networks(config, dtype=None, device="cpu"):
    """(G, D) for ``config.model``, each in the form ``config`` asks for at arithmetic ``dtype`` (None:
    float32) on ``device`` (precision.generator_form and discriminator_form), on the kernels ``config``
    names; not yet initialised."""
    kernels.use(config.kernels)     # first: which forms run faster depends on the kernels
    d_form = discriminator_form(config.d_form, dtype, device=device, ndf=config.ndf)
    if config.is_conditional:
        return build_generator(config), ConditionalDiscriminator(ndf=config.ndf, frames=config.frames,
                                                                 size=config.size, form=d_form, prefix="D_")
    return (build_generator(config, generator_form(config.g_form, dtype, device=device, ngf=config.ngf)),
            Discriminator(ndf=config.ndf, frames=config.frames, size=config.size,
                          minibatch_std=config.minibatch_std, form=d_form, prefix="D_"))


def inference_generator_name(config):
    """The checkpoint file samples come from: the averaged G when training kept one, else G."""
    return "G_ema" if config.g_ema else "G"


def prepare(block, contexts, hybridize=True):
    """Initialise (the initialisers are set per layer: N(0, 0.01) convolutions, N(1, 0.02) BN gamma)
    and hybridize."""
    block.initialize(mx.init.Zero(), ctx=contexts)   # every layer overrides this default
    if hybridize:
        block.hybridize(**HYBRIDIZE_FLAGS)
    return block
