"""Checkpoints: everything an exact resume needs, written atomically and verifiable.

A checkpoint is a folder ``ckpt-00001000/`` holding ``G.params``, ``D.params`` (weights and BN running
statistics), ``G.states``, ``D.states`` (Adam moments and update counts) and ``meta.json`` (iteration,
configuration, the data iterator's state, the RNG state, the run's id and the size and SHA-256 of every
other file). It is written into a temporary folder and renamed into place, and ``latest`` (a one-line
file naming the newest checkpoint) is replaced atomically after it, so a crash or a full disk leaves the
previous checkpoint intact and never a half-written one. On load every file is checked against
meta.json; ``resolve`` on a run folder skips damaged checkpoints (with a warning naming the file) and
takes the newest intact one.

RNG state: every random draw of training is counter-based (z of iteration k comes from
``default_rng([seed, k])``, the clips of batch k from ``default_rng([seed, k])`` in the iterator), so the
RNG state *is* (seed, next iteration); it is stored explicitly in meta.json.
"""
import hashlib
import json
import logging
import os
import re
import shutil

from .config import TrainConfig
from .errors import TinyVideoError
from .fsutil import atomic_directory, write_text_atomic

FORMAT_VERSION = 1
LATEST = "latest"
_NAME = re.compile(r"^ckpt-(\d{8})$")


log = logging.getLogger(__name__)


class CheckpointError(TinyVideoError):
    """A checkpoint that cannot be written or read; the message names the file."""


def checkpoint_name(iteration):
    return f"ckpt-{iteration:08d}"


def file_digest(path):
    """{"bytes": size, "sha256": hex digest} of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"bytes": os.path.getsize(path), "sha256": digest.hexdigest()}


def mxnet_reason(error):
    """The one informative line of an MXNetError (its text starts with a C++ traceback)."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


def save(run_dir, iteration, nets, trainers, meta, keep=3):
    """Write checkpoint ``iteration`` of ``nets`` ({'G': block, 'D': block}) and their ``trainers``.
    Raises CheckpointError (naming the folder and the error) if anything cannot be written - a full
    disk surfaces as OSError from Python and as MXNetError from MXNet's own writer; the previous
    checkpoint and ``latest`` are then untouched. Pruning keeps the ``keep`` newest checkpoints of this
    run (``meta["run_id"]``) and never touches another run's."""
    from mxnet.base import MXNetError
    final = os.path.join(run_dir, checkpoint_name(iteration))
    try:
        with atomic_directory(final) as tmp:
            for name, net in nets.items():
                net.save_parameters(os.path.join(tmp, f"{name}.params"))
            for name, trainer in (trainers or {}).items():
                trainer.save_states(os.path.join(tmp, f"{name}.states"))
            files = {name: file_digest(os.path.join(tmp, name)) for name in sorted(os.listdir(tmp))}
            with open(os.path.join(tmp, "meta.json"), "w") as f:
                json.dump(dict(meta, format_version=FORMAT_VERSION, iteration=iteration, files=files), f, indent=2)
        write_text_atomic(os.path.join(run_dir, LATEST), checkpoint_name(iteration) + "\n")
    except (OSError, MXNetError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else mxnet_reason(e)
        raise CheckpointError(f"could not write checkpoint {final}: {reason}; "
                              f"the previous checkpoint is intact") from e
    prune(run_dir, keep, meta.get("run_id"))
    return final


def prune(run_dir, keep, run_id=None):
    """Keep the ``keep`` newest checkpoints of run ``run_id`` (0 keeps all). A checkpoint whose
    metadata names another run (or cannot be read) is never deleted."""
    if keep <= 0:
        return
    own = [n for n in list_checkpoints(run_dir) if _run_id_of(os.path.join(run_dir, n)) == run_id]
    for name in own[:-keep]:
        shutil.rmtree(os.path.join(run_dir, name), ignore_errors=True)


def _run_id_of(checkpoint_dir):
    try:
        with open(os.path.join(checkpoint_dir, "meta.json")) as f:
            return json.load(f).get("run_id")
    except (OSError, ValueError, AttributeError):
        return "<unreadable>"      # matches no run: never pruned


def list_checkpoints(run_dir):
    if not os.path.isdir(run_dir):
        return []
    return sorted(n for n in os.listdir(run_dir) if _NAME.match(n))


def is_checkpoint(path):
    return os.path.isfile(os.path.join(path, "meta.json")) or bool(_NAME.match(os.path.basename(os.path.normpath(path))))


def resolve(path, verify=True):
    """A checkpoint folder, or a run folder (-> its newest intact checkpoint), -> the checkpoint folder.

    A checkpoint folder given directly must be intact (CheckpointError naming the damaged file). In a
    run folder, damaged checkpoints are skipped with a warning naming the file, newest first."""
    return _resolve(path, verify)[0]


def _resolve(path, verify):
    """``resolve``, also returning the metadata ``verify_files`` read (None when not verifying)."""
    if is_checkpoint(path):
        return path, verify_files(path) if verify else None
    found = list_checkpoints(path)
    if not found:
        raise CheckpointError(f"{path}: no checkpoint found (expected a run folder with ckpt-* folders, "
                              f"or a checkpoint folder with meta.json)")
    latest = _read_latest(path)
    order = ([latest] if latest in found else []) + [n for n in reversed(found) if n != latest]
    problems = []
    for name in order:
        candidate = os.path.join(path, name)
        try:
            meta = verify_files(candidate) if verify else None
        except CheckpointError as e:
            problems.append(str(e))
            log.warning("skipping damaged checkpoint %s (%s)", candidate, e)
            continue
        return candidate, meta
    raise CheckpointError(f"{path}: no intact checkpoint ({len(problems)} damaged; newest: {problems[0]})")


def _read_latest(run_dir):
    try:
        with open(os.path.join(run_dir, LATEST)) as f:
            return f.read().strip()
    except (OSError, UnicodeDecodeError):
        return None


def read_meta(checkpoint_dir):
    path = os.path.join(checkpoint_dir, "meta.json")
    try:
        with open(path, "rb") as f:
            meta = json.loads(f.read().decode("utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing (not a complete checkpoint)") from None
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read checkpoint metadata ({e.strerror or e})") from None
    except ValueError as e:        # bad JSON or bad UTF-8
        raise CheckpointError(f"{path}: damaged checkpoint metadata (not valid JSON: {e})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: damaged checkpoint metadata (not a JSON object)")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: unsupported checkpoint format {meta.get('format_version')!r}")
    return meta


def verify_files(checkpoint_dir):
    """Check every file meta.json lists (size, then SHA-256); returns the metadata. Checkpoints written
    before checksums were recorded are accepted as they are (their loading errors are still caught)."""
    meta = read_meta(checkpoint_dir)
    for name, expected in sorted((meta.get("files") or {}).items()):
        path = os.path.join(checkpoint_dir, name)
        if not os.path.isfile(path):
            raise CheckpointError(f"{path}: missing from the checkpoint")
        size = os.path.getsize(path)
        if size != expected.get("bytes"):
            raise CheckpointError(f"{path}: damaged ({size} bytes, the checkpoint recorded {expected.get('bytes')})")
        if file_digest(path)["sha256"] != expected.get("sha256"):
            raise CheckpointError(f"{path}: damaged (contents differ from the checksum the checkpoint recorded)")
    return meta


def load_parameters(block, checkpoint_dir, name, ctx=None):
    """``block.load_parameters`` of ``<checkpoint_dir>/<name>.params``; any failure of MXNet's reader is
    a CheckpointError naming the file."""
    path = os.path.join(checkpoint_dir, f"{name}.params")
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: missing from the checkpoint")
    try:
        try:
            block.load_parameters(path, ctx=ctx)
        except ValueError:    # Gluon's "not present in ParameterDict": names the file has and the block lacks
            if not only_retired_constants_extra(block, path):
                raise
            block.load_parameters(path, ctx=ctx, ignore_extra=True)
    except Exception as e:    # MXNetError, AssertionError, ValueError...: all mean "this file is not usable"
        raise CheckpointError(f"{path}: damaged or not this model's parameters ({mxnet_reason(e)[:200]})") from None


# Constants that checkpoints written before 2026-12-04 hold and the layers no longer have: the
# resize-convolution's tap table and interleave kernel (both fixed, derived from the layer's shape).
RETIRED_CONSTANTS = ("phase_taps", "interleave")


def only_retired_constants_extra(block, path):
    """True when every name the file has and ``block`` lacks is a retired constant (RETIRED_CONSTANTS), so
    the file loads with those ignored and nothing the model uses is skipped."""
    from mxnet import nd
    extra = set(nd.load(path)) - set(block._collect_params_with_prefix())
    return bool(extra) and all(name.rsplit(".", 1)[-1] in RETIRED_CONSTANTS for name in extra)


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
        load_parameters(net, checkpoint_dir, name, ctx=ctx)
    for name, trainer in (trainers or {}).items():
        path = os.path.join(checkpoint_dir, f"{name}.states")
        if imported and not os.path.exists(path):
            continue
        if not os.path.isfile(path):
            raise CheckpointError(f"{path}: missing from the checkpoint")
        try:
            trainer.load_states(path)
        except Exception as e:   # pickle, EOF, MXNet: the file is not usable
            raise CheckpointError(f"{path}: damaged optimiser state ({type(e).__name__}: {str(e)[:200]})") from None
    return meta


class Checkpoint:
    """A checkpoint opened once: its folder, its metadata (every file checked against the checksums it
    records when it was opened) and the configuration it was trained with. Whatever reads a checkpoint
    takes one (``opened`` makes one of a path), so a command resolves and verifies its checkpoint once,
    at its edge, and hands it down."""

    def __init__(self, folder, meta):
        self.folder, self.meta = folder, meta

    @property
    def config(self):
        return TrainConfig.from_dict(self.meta["config"])

    def load_parameters(self, block, name, ctx=None):
        load_parameters(block, self.folder, name, ctx=ctx)

    def __str__(self):
        return self.folder


def open_checkpoint(path):
    """A run folder (its newest intact checkpoint, ``resolve``) or a checkpoint folder, verified."""
    return Checkpoint(*_resolve(path, verify=True))     # the metadata its verification read


def opened(source):
    """``source`` as a Checkpoint: one already opened, or a run or checkpoint folder to open."""
    return source if isinstance(source, Checkpoint) else open_checkpoint(source)
