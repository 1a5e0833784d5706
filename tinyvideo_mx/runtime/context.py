"""Parsing ``--ctx``: ``cpu``, ``cpu0,cpu1``, ``gpu0``, ``gpu0,gpu1``... into MXNet contexts."""
import re

import mxnet as mx

from ..errors import SettingError

_ITEM = re.compile(r"^(cpu|gpu)(\d*)$")


def parse_contexts(spec):
    contexts = []
    for item in str(spec).replace(" ", "").split(","):
        m = _ITEM.match(item.lower())
        if not m:
            raise SettingError(f"bad context {item!r} in {spec!r}: use cpu, cpu0,cpu1, gpu0 or gpu0,gpu1,...")
        kind, number = m.group(1), int(m.group(2) or 0)
        if kind == "gpu" and number >= mx.context.num_gpus():
            raise SettingError(f"context {item} requested but MXNet sees {mx.context.num_gpus()} GPU(s); "
                             "install the 'gpu' extra (mxnet-cu112) on a machine with a supported GPU")
        contexts.append(mx.gpu(number) if kind == "gpu" else mx.cpu(number))
    if len(set(contexts)) != len(contexts):
        raise SettingError(f"context listed twice in {spec!r}")
    return contexts


def single_context(spec):
    """One context from ``--ctx`` (inference commands run on one device)."""
    contexts = parse_contexts(spec)
    if len(contexts) != 1:
        raise SettingError(f"--ctx {spec}: give one device (cpu or gpuN) for this command")
    return contexts[0]


def split_sizes(total, parts):
    """How many items of a batch each context gets (as gluon.utils.split_data with even_split=False)."""
    base, extra = divmod(total, parts)
    sizes = [base + (1 if i < extra else 0) for i in range(parts)]
    if min(sizes) == 0:
        raise SettingError(f"batch of {total} cannot be split over {parts} contexts")
    return sizes


def split_to_contexts(array, contexts):
    """Split a batch along axis 0 over ``contexts`` (one slice each, copied to its context)."""
    sizes = split_sizes(array.shape[0], len(contexts))
    out, start = [], 0
    for size, ctx in zip(sizes, contexts):
        out.append(array[start:start + size].as_in_context(ctx))
        start += size
    return out
