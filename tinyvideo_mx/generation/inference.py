"""Running a trained generator - for sampling, evaluation, export, serving and the sample grids of
training: load one from a checkpoint, make its inputs, run it in padded batches.

Every z is drawn by ``latents`` from a counter-based seed, so a clip never depends on what else was
drawn; the streams are disjoint:

* training: the z of iteration k is ``latents([seed, k], batch)`` (training/step.py);
* ``SAMPLE_GRID_ITERATION``: the fixed z of the sample grids written during training, drawn as the
  training z of that (never reached) iteration;
* ``STATISTICS_ITERATION`` + k: batch k of the z the averaged G's BatchNorm statistics are estimated on
  (training/averaging.py), likewise never reached;
* ``EVALUATION_SEED_OFFSET``: evaluation's z, ``latents([seed + EVALUATION_SEED_OFFSET, first clip])``;
* sampling and serving: ``latents(seed, n)``; clip i is row i whatever n.
"""
import mxnet as mx
import numpy as np

from .. import checkpoint
from ..models.factory import build_generator, inference_generator_name, prepare

OUTPUTS = ("video", "foreground", "mask", "background")
# each output's values: tanh for the video, its foreground and background, sigmoid for the mask
OUTPUT_RANGES = {"video": (-1, 1), "foreground": (-1, 1), "mask": (0, 1), "background": (-1, 1)}
SAMPLE_GRID_ITERATION = 1 << 30
STATISTICS_ITERATION = (1 << 30) + 1024
EVALUATION_SEED_OFFSET = 1 << 29


def latents(seed, n, nz):
    """(n, nz) float32 standard normal rows from ``seed`` (an int or a list of ints); the first rows do
    not depend on n."""
    return np.random.default_rng(seed).standard_normal((n, nz)).astype(np.float32)


def generator_inputs(config, z_seed, rows, images=None, first_row=0):
    """The generator's inputs: [z] for the unconditional model; [images] (+ [z] with conditional noise)
    for the conditional one. z is rows ``first_row .. first_row + rows`` of the draw from ``z_seed``."""
    if config.is_conditional:
        if not config.cond_noise:
            return [images]
        return [images, latents(z_seed, first_row + rows, config.cond_noise)[first_row:]]
    return [latents(z_seed, first_row + rows, config.nz)[first_row:]]


def input_shapes(config, batch=1):
    """Shapes of the generator's inputs: [z], [image] or [image, z]."""
    if config.is_conditional:
        shapes = [(batch, 3, config.size, config.size)]
        return shapes + [(batch, config.cond_noise)] if config.cond_noise else shapes
    return [(batch, config.nz)]


def load_generator(source, ctx=None, hybridize=True):
    """(G, config) from a Checkpoint, a run folder or a checkpoint folder."""
    ckpt = checkpoint.opened(source)
    config = ckpt.config
    ctx = ctx or mx.cpu()
    G = build_generator(config)
    prepare(G, [ctx], hybridize)
    ckpt.load_parameters(G, inference_generator_name(config), ctx=ctx)
    return G, config


INFERENCE_BATCH = 16


def padded_batches(inputs, batch):
    """Yield (rows, [chunk of each input, zero-padded to exactly ``batch`` rows]) over float32 arrays
    sharing their first axis. Inference always runs at one batch size: oneDNN reorders weights in place
    for inference, and a later inference at another batch size can fail (see ``run_generator``)."""
    total = len(inputs[0])
    for start in range(0, total, batch):
        rows = min(batch, total - start)
        yield rows, [np.concatenate([a[start:start + rows], np.zeros((batch - rows,) + a.shape[1:], np.float32)])
                     for a in inputs]


def run_generator(G, inputs, ctx=None, batch=INFERENCE_BATCH):
    """Inference (BN running statistics) -> dict of numpy arrays. ``inputs``: z rows, or a list of the
    generator's input arrays ([z], [images] or [images, z]).

    The network always runs on exactly ``batch`` rows (the last chunk is padded with zeros; rows are
    independent in inference, so results do not change). oneDNN reorders transposed-convolution
    weights in place for inference, and a later inference at another batch size then fails ("Check
    failed: weights.GetMKLDNNData()->get_desc() == IOLogicalSwapDesc", full widths); one fixed size
    avoids it. Training steps at another batch size in between are fine."""
    ctx = ctx or mx.cpu()
    inputs = [np.asarray(a, np.float32) for a in (inputs if isinstance(inputs, (list, tuple)) else [inputs])]
    chunks = {k: [] for k in OUTPUTS}
    for rows, padded in padded_batches(inputs, batch):
        outs = G(*(mx.nd.array(a, ctx=ctx) for a in padded))
        for key, value in zip(OUTPUTS, outs):
            chunks[key].append(value.asnumpy()[:rows])
    return {k: np.concatenate(v) for k, v in chunks.items()}


