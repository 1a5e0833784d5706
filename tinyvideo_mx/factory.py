"""Build, initialise and hybridize the networks a configuration describes."""
import mxnet as mx

from .networks import Discriminator, Generator

# static_alloc only. static_shape=True gives silently wrong training in MXNet 1.9.1 when a block runs
# twice before one backward (D on the fake batch, then on the real batch): D learns to call fakes real
# (loss_d_fake climbs past 8 within 30 iterations on the demo). tests/test_training.py compares a
# hybridized training step against an imperative one to keep this from coming back.
HYBRIDIZE_FLAGS = dict(static_alloc=True)


def build_networks(config):
    """(G, D) for ``config.model``; not yet initialised."""
    if config.model == "conditional":
        from .conditional import ConditionalDiscriminator, ConditionalGenerator
        return (ConditionalGenerator(ngf=config.ngf, frames=config.frames, size=config.size,
                                     noise=config.cond_noise, prefix="G_"),
                ConditionalDiscriminator(ndf=config.ndf, frames=config.frames, size=config.size, prefix="D_"))
    return (Generator(nz=config.nz, ngf=config.ngf, frames=config.frames, size=config.size, prefix="G_"),
            Discriminator(ndf=config.ndf, frames=config.frames, size=config.size, prefix="D_"))


def prepare(block, contexts, hybridize=True):
    """Initialise (the initialisers are set per layer: N(0, 0.01) convolutions, N(1, 0.02) BN gamma)
    and hybridize."""
    block.initialize(mx.init.Zero(), ctx=contexts)   # every layer overrides this default
    if hybridize:
        block.hybridize(**HYBRIDIZE_FLAGS)
    return block
