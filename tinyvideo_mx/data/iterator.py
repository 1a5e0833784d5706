"""``StripIter``: an ``mx.io.DataIter`` over strip files, decoded by OpenCV in worker threads with
prefetching (OpenCV releases the GIL while decoding and resizing).

Which clips make batch k is a pure function of (seed, k): sampling with replacement draws B indices
uniformly (the original's ``randomize = 1``); ``shuffle`` walks a fresh permutation per epoch;
``sequential`` reads the list in order. So the iterator's whole state is the next batch number plus the
clips found bad, and a resumed run sees exactly the batches the uninterrupted run would have.

Decoded clips are kept in memory up to ``cache_mb`` (``DecodedClips``): a clip is a pure function of its
file, so later epochs read the same arrays without decoding them again. The demo preset decodes 128-px
strips down to 32 px, about 45 ms a batch on a thread that shares the two cores with training.

An epoch is floor(#clips / batch) batches, as in the original; ``next`` raises StopIteration at its end
and ``reset`` moves on to the next epoch.

A clip that cannot be used (missing, unreadable, corrupt, truncated, mis-sized) is logged with its path
and reason, remembered, and replaced by another clip chosen deterministically; more than ``max_bad``
distinct bad clips abort with ``TooManyBadClips``.
"""
import collections
import concurrent.futures
import logging
import threading

import mxnet as mx
import numpy as np

from ..errors import SettingError, TinyVideoError
from .strips import StripError, load_strip

log = logging.getLogger(__name__)

SAMPLING_MODES = ("replacement", "shuffle", "sequential")
MAX_REPLACEMENT_TRIES = 1000


class TooManyBadClips(TinyVideoError):
    pass


def worker_share(paths, labels, batch_size, sampling, part_index=0, num_parts=1):
    """(paths, labels as float32 or None) of worker ``part_index`` of ``num_parts`` (distributed training),
    after checking that they can make batches. Labels are the optional integer class per clip (labelled
    lists, finetune-classifier); a replaced bad clip brings its own label."""
    if sampling not in SAMPLING_MODES:
        raise SettingError(f"sampling must be one of {SAMPLING_MODES}, got {sampling!r}")
    share = list(paths)[part_index::num_parts]
    share_labels = None if labels is None else np.asarray(list(labels)[part_index::num_parts], np.float32)
    if share_labels is not None and len(share_labels) != len(share):
        raise SettingError(f"{len(labels)} labels for {len(paths)} clips")
    if len(share) < batch_size and sampling != "replacement":
        raise SettingError(f"{len(share)} clips cannot fill one batch of {batch_size} without replacement")
    return share, share_labels


class StripIter(mx.io.DataIter):
    def __init__(self, paths, batch_size, frames=32, size=64, frame_height=128, sampling="replacement",
                 seed=0, decode_threads=2, prefetch=2, max_bad=50, part_index=0, num_parts=1,
                 data_name="data", loader=None, labels=None, cache_mb=0):
        super().__init__(batch_size)
        self.paths, self.labels = worker_share(paths, labels, batch_size, sampling, part_index, num_parts)
        self.frames, self.size, self.frame_height = frames, size, frame_height
        self.sampling, self.seed, self.max_bad = sampling, seed, max_bad
        self.prefetch = max(1, prefetch)
        self._decode = loader or (lambda path: load_strip(path, frame_height, frames, size))
        self.cache = DecodedClips(cache_mb * 2 ** 20)
        self.batches_per_epoch = max(1, len(self.paths) // batch_size)
        self.data_name = data_name
        self.bad = {}                 # path -> reason, for every distinct bad clip met
        self.next_batch = 0           # global batch counter (never reset: it also numbers epochs)
        self._epoch_end = self.batches_per_epoch
        self._pool = concurrent.futures.ThreadPoolExecutor(max(1, decode_threads), thread_name_prefix="strips")
        self._pending = collections.OrderedDict()   # batch number -> list of futures

    # -- what the iterator yields ----------------------------------------------------------------
    @property
    def provide_data(self):
        shape = (self.batch_size, 3, self.frames, self.size, self.size)
        return [mx.io.DataDesc(self.data_name, shape, np.float32, layout="NCDHW")]

    @property
    def provide_label(self):
        if self.labels is None:
            return []
        return [mx.io.DataDesc("softmax_label", (self.batch_size,), np.float32)]

    def batch_indices(self, k):
        """Indices of the clips of batch ``k`` (a pure function of seed and k)."""
        n, b = len(self.paths), self.batch_size
        if self.sampling == "replacement":
            return np.random.default_rng([self.seed, k]).integers(0, n, size=b)
        epoch, within = divmod(k, self.batches_per_epoch)
        order = (np.random.default_rng([self.seed, 1 << 20, epoch]).permutation(n)
                 if self.sampling == "shuffle" else np.arange(n))
        return order[within * b:(within + 1) * b]

    # -- state for exact resume ------------------------------------------------------------------
    def state_dict(self):
        return {"next_batch": self.next_batch, "bad": dict(self.bad)}

    def load_state_dict(self, state):
        self._drop_pending()
        self.next_batch = int(state["next_batch"])
        self.bad = dict(state.get("bad", {}))
        self._epoch_end = (self.next_batch // self.batches_per_epoch + 1) * self.batches_per_epoch

    # -- DataIter protocol -----------------------------------------------------------------------
    def reset(self):
        if self.next_batch >= self._epoch_end:
            self._epoch_end += self.batches_per_epoch

    def next(self):
        if self.next_batch >= self._epoch_end:
            raise StopIteration
        k = self.next_batch
        clips, indices = self.load_batch(k, with_indices=True)
        self.next_batch += 1
        label = [] if self.labels is None else [mx.nd.array(self.labels[indices])]
        return mx.io.DataBatch(data=[mx.nd.array(clips)], label=label, pad=0, index=indices,
                               provide_data=self.provide_data, provide_label=self.provide_label)

    def next_any_epoch(self):
        """The next batch; at an epoch's end, the first batch of the next epoch (for step-counted loops)."""
        try:
            return self.next()
        except StopIteration:
            self.reset()
            return self.next()

    def load_batch(self, k, with_indices=False):
        """The (B, 3, T, S, S) float32 array of batch ``k``, replacing bad clips (and, with
        ``with_indices``, the index of the clip each row holds)."""
        for ahead in range(k, k + self.prefetch + 1):
            if ahead not in self._pending:
                self._pending[ahead] = [self._submit(i) for i in self.batch_indices(ahead)]
        for stale in [j for j in self._pending if j < k]:
            self._pending.pop(stale)
        futures = self._pending.pop(k)
        out = np.empty((self.batch_size, 3, self.frames, self.size, self.size), np.float32)
        indices = np.array(self.batch_indices(k))
        for slot, future in enumerate(futures):
            try:
                out[slot] = future.result()
            except StripError as e:
                self._record_bad(e)
                indices[slot], out[slot] = self._replacement(k, slot)
        return (out, indices) if with_indices else out

    def _load(self, path):
        clip = self.cache.get(path)
        if clip is None:
            clip = self._decode(path)        # a StripError propagates: bad clips are never kept
            self.cache.put(path, clip)
        return clip

    def _submit(self, index):
        path = self.paths[index]
        if path in self.bad:
            return _failed(StripError(path, self.bad[path]))
        return self._pool.submit(self._load, path)

    def _record_bad(self, error):
        if error.path in self.bad:
            return
        self.bad[error.path] = error.reason
        log.warning("bad clip skipped: %s: %s (%d bad so far, limit %d)",
                    error.path, error.reason, len(self.bad), self.max_bad)
        if len(self.bad) > self.max_bad:
            raise TooManyBadClips(
                f"{len(self.bad)} unusable clips, more than the limit of {self.max_bad} (--max-bad); "
                f"the last one: {error.path}: {error.reason}")

    def _replacement(self, k, slot):
        rng = np.random.default_rng([self.seed, k, slot, 7])
        for _ in range(MAX_REPLACEMENT_TRIES):
            index = int(rng.integers(0, len(self.paths)))
            path = self.paths[index]
            if path in self.bad:
                continue
            try:
                return index, self._load(path)
            except StripError as e:
                self._record_bad(e)
        raise TooManyBadClips(f"no usable clip found in {MAX_REPLACEMENT_TRIES} tries "
                              f"({len(self.bad)} of {len(self.paths)} clips are bad)")

    def _drop_pending(self):
        for futures in self._pending.values():
            for f in futures:
                f.cancel()
        self._pending.clear()

    def close(self):
        self._drop_pending()
        self._pool.shutdown(wait=True)

    def __del__(self):
        try:
            self._pool.shutdown(wait=False)
        except Exception:
            pass


class DecodedClips:
    """Decoded clips by path, kept for the iterator's life while their bytes fit ``budget`` (first come,
    first kept: no eviction, so memory stays within the budget and nothing is decoded twice that fits).
    Kept arrays are read-only; the iterator copies them into each batch. Worker threads put, so the
    budget is counted under a lock."""

    def __init__(self, budget):
        self.budget, self.used = budget, 0
        self._clips = {}
        self._lock = threading.Lock()

    def __len__(self):
        return len(self._clips)

    def get(self, path):
        return self._clips.get(path)

    def put(self, path, clip):
        with self._lock:
            if path in self._clips or self.used + clip.nbytes > self.budget:
                return
            clip.flags.writeable = False
            self._clips[path] = clip
            self.used += clip.nbytes


def every_clip(paths, batch_size, **kwargs):
    """Yield every clip of ``paths`` once, in order, as (B, 3, T, S, S) arrays: fixed-size batches read
    sequentially (the list padded with its first clips), the padding cut from the last one."""
    paths = list(paths)
    padded = paths + paths[:(-len(paths)) % batch_size]
    it = StripIter(padded, batch_size, sampling="sequential", **kwargs)
    try:
        for start in range(0, len(paths), batch_size):
            yield it.next().data[0].asnumpy()[:len(paths) - start]
    finally:
        it.close()


def _failed(error):
    future = concurrent.futures.Future()
    future.set_exception(error)
    return future
