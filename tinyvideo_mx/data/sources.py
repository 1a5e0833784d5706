"""Where training and evaluation get real clips: the list file a configuration names (or the built-in
synthetic dataset, made once), the training ``DataIter`` over it, and the first clips of a list as arrays."""
import logging

import numpy as np

from ..errors import TinyVideoError
from . import synthetic
from .iterator import StripIter, every_clip
from .listfile import read_list

log = logging.getLogger(__name__)
CHUNK = 64   # clips per array when streaming a list (2048 full-size clips would be 3.2 GB at once)


def resolve_data_list(config):
    """The list file to train on; with no ``data_list``, the embedded synthetic dataset (made once)."""
    if config.data_list:
        return config.data_list
    directory = synthetic.default_directory(config.synthetic_clips, max(config.frames, 32), config.frame_height)
    log.info("no data list given: using the embedded synthetic dataset in %s", directory)
    return synthetic.ensure_dataset(directory, config.synthetic_clips, max(config.frames, 32), config.frame_height)


def training_clips(config, n=256):
    """The first ``n`` clips of the data ``config`` trains on, as one array (for statistics)."""
    return real_clips(resolve_data_list(config), n, config, config.data_root)


def readable_training_clips(config, n=256):
    """(the first ``n`` clips of the data ``config`` trains on, None), or (None, why they cannot be read):
    what samples are compared with, where nothing else depends on them."""
    try:
        return training_clips(config, n), None
    except TinyVideoError as e:
        return None, str(e)


def make_iterator(config, part_index=0, num_parts=1):
    """Worker ``part_index`` of ``num_parts``: its shard of the list, batches of its share of the batch."""
    paths = read_list(resolve_data_list(config), config.data_root)
    return StripIter(paths, config.batch_size // num_parts, frames=config.frames, size=config.size,
                     frame_height=config.frame_height, sampling=config.sampling, seed=config.seed,
                     decode_threads=config.decode_threads, max_bad=config.max_bad,
                     part_index=part_index, num_parts=num_parts, cache_mb=config.cache_mb)


def real_chunks(list_path, n, config, data_root=None, chunk=CHUNK, decode_threads=2):
    """The first ``n`` clips of the list (all, if it has fewer), prepared as training prepares them."""
    paths = read_list(list_path, data_root)[:n]
    return every_clip(paths, min(chunk, len(paths)), frames=config.frames, size=config.size,
                      frame_height=config.frame_height, decode_threads=decode_threads, max_bad=config.max_bad)


def real_clips(list_path, n, config, data_root=None):
    """The first ``n`` real clips of the list as one array (fewer if the list is shorter)."""
    return np.concatenate(list(real_chunks(list_path, n, config, data_root)))
