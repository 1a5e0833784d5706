"""Checkpoints: everything an exact resume needs, written atomically.

A checkpoint is a folder ``ckpt-00001000/`` holding ``G.params``, ``D.params`` (weights and BN running
statistics), ``G.states``, ``D.states`` (Adam moments and update counts) and ``meta.json`` (iteration,
configuration, the data iterator's state and the RNG state). It is written into a temporary folder and
renamed into place, and ``latest`` (a one-line file naming the newest checkpoint) is replaced
atomically after it, so a crash or a full disk leaves the previous checkpoint intact and never a
half-written one.

RNG state: every random draw of training is counter-based (z of iteration k comes from
``default_rng([seed, k])``, the clips of batch k from ``default_rng([seed, k])`` in the iterator), so the
RNG state *is* (seed, next iteration); it is stored explicitly in meta.json.
"""
import json
import os
import re
import shutil

from .fsutil import atomic_directory, write_text_atomic

FORMAT_VERSION = 1
LATEST = "latest"
_NAME = re.compile(r"^ckpt-(\d{8})$")


class CheckpointError(RuntimeError):
    pass


def checkpoint_name(iteration):
    return f"ckpt-{iteration:08d}"


def save(run_dir, iteration, nets, trainers, meta, keep=3):
    """Write checkpoint ``iteration`` of ``nets`` ({'G': block, 'D': block}) and their ``trainers``.
    Raises CheckpointError (naming the folder and the OS error) if anything cannot be written; the
    previous checkpoint and ``latest`` are then untouched."""
    final = os.path.join(run_dir, checkpoint_name(iteration))
    try:
        with atomic_directory(final) as tmp:
            for name, net in nets.items():
                net.save_parameters(os.path.join(tmp, f"{name}.params"))
            for name, trainer in (trainers or {}).items():
                trainer.save_states(os.path.join(tmp, f"{name}.states"))
            with open(os.path.join(tmp, "meta.json"), "w") as f:
                json.dump(dict(meta, format_version=FORMAT_VERSION, iteration=iteration), f, indent=2)
        write_text_atomic(os.path.join(run_dir, LATEST), checkpoint_name(iteration) + "\n")
    except OSError as e:
        raise CheckpointError(f"could not write checkpoint {final}: {e.strerror or e}; "
                              f"the previous checkpoint is intact") from e
    prune(run_dir, keep)
    return final


def prune(run_dir, keep):
    """Keep the ``keep`` newest checkpoints (0 keeps all)."""
    if keep <= 0:
        return
    for name in list_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(os.path.join(run_dir, name), ignore_errors=True)


def list_checkpoints(run_dir):
    if not os.path.isdir(run_dir):
        return []
    return sorted(n for n in os.listdir(run_dir) if _NAME.match(n))


def resolve(path):
    """A checkpoint folder, or a run folder (-> its latest checkpoint), -> the checkpoint folder."""
    if os.path.isfile(os.path.join(path, "meta.json")):
        return path
    latest = os.path.join(path, LATEST)
    if os.path.isfile(latest):
        with open(latest) as f:
            candidate = os.path.join(path, f.read().strip())
        if os.path.isfile(os.path.join(candidate, "meta.json")):
            return candidate
    found = list_checkpoints(path)
    if found:
        return os.path.join(path, found[-1])
    raise CheckpointError(f"{path}: no checkpoint found (expected a run folder with ckpt-* folders, "
                          f"or a checkpoint folder with meta.json)")


def read_meta(checkpoint_dir):
    path = os.path.join(checkpoint_dir, "meta.json")
    try:
        with open(path) as f:
            meta = json.load(f)
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path}: cannot read checkpoint metadata ({e})") from e
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: unsupported checkpoint format {meta.get('format_version')!r}")
    return meta


def load_into(checkpoint_dir, nets, trainers=None, ctx=None):
    """Load parameters (and optimiser states) of a checkpoint into built networks and trainers.
    A checkpoint imported from Torch7 (``import-t7``) has no optimiser states: Adam starts afresh."""
    meta = read_meta(checkpoint_dir)
    imported = bool(meta.get("imported_from"))
    for name, net in nets.items():
        path = os.path.join(checkpoint_dir, f"{name}.params")
        if imported and not os.path.exists(path):
            raise CheckpointError(f"{checkpoint_dir}: imported without {name} (give import-t7 the "
                                  f"{'discriminator' if name == 'D' else 'generator'} file too)")
        net.load_parameters(path, ctx=ctx)
    for name, trainer in (trainers or {}).items():
        path = os.path.join(checkpoint_dir, f"{name}.states")
        if imported and not os.path.exists(path):
            continue
        trainer.load_states(path)
    return meta
