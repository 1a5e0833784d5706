"""``tinyvideo-mx evaluate``: FVD between generated clips and a real strip dataset, and the Inception
Score of generated clips (networks and protocol: metrics/video_networks.py).

Clips stream through in chunks (2048 full-size clips would be 3.2 GB at once). The real set's feature
statistics can be cached in a .npz that records the protocol, list and clip count it was made with, so
evaluating many checkpoints (or FVD during training) computes them once.
"""
import json
import logging
import os

import numpy as np

from .. import checkpoint
from ..data.sources import CHUNK, real_chunks, real_clips, resolve_data_list
from ..errors import SettingError
from ..fsutil import atomic_path, write_text_atomic
from ..generation.inference import EVALUATION_SEED_OFFSET, generator_inputs, load_generator, run_generator
from . import feature_statistics, frechet_distance, inception_score
from .clip_statistics import compare
from .video_networks import softmax

log = logging.getLogger(__name__)


def evaluation_inputs(config, seed, start, rows, real=None):
    """The generator's inputs for evaluated clips ``start..start+rows``: z rows drawn from (seed, start)
    (unconditional), or the first frames of the ``real`` clips (+ noise: the futures of real images)."""
    images = real[:, :, 0] if config.is_conditional else None
    return generator_inputs(config, [seed + EVALUATION_SEED_OFFSET, start], rows, images)


def generated_chunks(G, config, n, seed, real=None, chunk=CHUNK, ctx=None):
    """``n`` generated videos in chunks: from z (unconditional), or from the first frames of the ``real``
    chunks (conditional: the futures of real images)."""
    if config.is_conditional:
        done = 0
        for clips in real:
            clips = clips[:n - done]
            yield run_generator(G, evaluation_inputs(config, seed, done, len(clips), clips), ctx)["video"]
            done += len(clips)
            if done >= n:
                return
        return
    for start in range(0, n, chunk):
        yield run_generator(G, evaluation_inputs(config, seed, start, min(chunk, n - start)), ctx)["video"]


def real_statistics(network, list_path, n, config, cache=None, data_root=None):
    """(mu, sigma, count) of the real clips' features, from ``cache`` when it matches."""
    key = {"protocol": network.protocol.to_dict(), "list": os.path.abspath(list_path), "n": n,
           "frames": config.frames, "size": config.size}
    if cache and os.path.exists(cache):
        stored = np.load(cache, allow_pickle=False)
        if json.loads(str(stored["key"])) == key:
            return stored["mu"], stored["sigma"], int(stored["count"])
        log.info("%s was made under another protocol or list: recomputing", cache)
    features = network.outputs(real_chunks(list_path, n, config, data_root))
    mu, sigma = feature_statistics(features)
    if cache:
        with atomic_path(cache) as tmp:
            np.savez(tmp, mu=mu, sigma=sigma, count=len(features), key=json.dumps(key))
    return mu, sigma, len(features)


def frechet_video_distance(network, G, config, list_path, n, seed=0, cache=None, data_root=None, ctx=None):
    """FVD of ``n`` clips of G against ``n`` real clips of the list (fewer if the list is shorter)."""
    mu_r, sigma_r, count = real_statistics(network, list_path, n, config, cache, data_root)
    real = real_chunks(list_path, n, config, data_root) if config.is_conditional else None
    fake = network.outputs(generated_chunks(G, config, min(n, count) if real else n, seed, real, ctx=ctx))
    mu_f, sigma_f = feature_statistics(fake)
    return frechet_distance(mu_f, sigma_f, mu_r, sigma_r), count, len(fake)


def quality_statistics(G, config, list_path, n=256, seed=0, data_root=None, ctx=None):
    """Weight-free statistics (metrics/clip_statistics.py) of ``n`` generated clips against ``n`` real ones:
    rows {statistic, generated, real, ratio, note} (clip_statistics.compare). Conditional models are
    judged on the futures of the real clips' first frames."""
    real = real_clips(list_path, n, config, data_root)
    out = run_generator(G, evaluation_inputs(config, seed, 0, n, real), ctx)
    return compare(out["video"], real, out["mask"])


def evaluate(source, data_list=None, i3d=None, c3d=None, n=2048, seed=0, splits=10, out=None,
             real_cache=None, data_root=None, stats_clips=0):
    """FVD (with the I3D ``VideoNetwork`` ``i3d``), IS (with the C3D one ``c3d``) and, with
    ``stats_clips``, the weight-free statistics of the generator of ``source`` (a Checkpoint, a run or
    checkpoint folder) against the real clips of ``data_list`` (default: the data the run trained on).
    Returns the result dict (also written to ``out`` as JSON)."""
    if i3d is None and c3d is None and not stats_clips:
        raise SettingError("nothing to evaluate: give --stats, I3D weights (FVD) and/or C3D weights (IS)")
    ckpt = checkpoint.opened(source)
    G, config = load_generator(ckpt)
    # real clips, by default the data the run trained on: for the statistics, FVD, and a conditional IS
    if not data_list and (stats_clips or i3d is not None or (c3d is not None and config.is_conditional)):
        data_list = resolve_data_list(ckpt.config)
    result = {"checkpoint": ckpt.folder, "seed": seed, "n": n}
    if stats_clips:
        rows = quality_statistics(G, config, data_list, stats_clips, seed, data_root)
        result["statistics"] = {"clips": stats_clips, "data": data_list,
                                "rows": rows}
    if i3d is not None:
        fvd, n_real, n_fake = frechet_video_distance(i3d, G, config, data_list, n, seed, real_cache, data_root)
        result["fvd"] = {"value": fvd, "real_clips": n_real, "generated_clips": n_fake, "data": data_list,
                         "protocol": i3d.protocol.to_dict(), "features": "I3D logits"}
    if c3d is not None:
        real = real_chunks(data_list, n, config, data_root) if config.is_conditional else None
        probabilities = softmax(c3d.outputs(generated_chunks(G, config, n, seed, real)))
        mean, std = inception_score(probabilities, min(splits, len(probabilities)))
        result["inception_score"] = {"mean": mean, "std": std, "splits": min(splits, len(probabilities)),
                                     "clips": len(probabilities), "classes": probabilities.shape[1],
                                     "protocol": c3d.protocol.to_dict()}
    if out:
        write_text_atomic(out, json.dumps(result, indent=2) + "\n")
    return result
