"""The run folder: a new run never destroys or hides another, and a killed write leaves no litter.

``claim`` is called once by a new run (never by a resume): a folder that already holds a run -
checkpoints, ``latest``, ``config.json``, metrics or TensorBoard logs - is refused with one line saying
what to do, or, with ``overwrite=True``, moved aside whole to ``<folder>.old-<time>`` (nothing is
deleted). ``clean_temporaries`` runs at every start, new or resumed: it removes the temporary folders a
killed checkpoint write left (``.ckpt-*.tmp``) and puts back a checkpoint that was moved aside for
replacement when the kill came between the two renames.

``take_ownership`` comes before both: a run folder has one trainer. Its owner lock (``owner.lock/``, the
same lock the stabiliser puts on a video: locks.py) names host, PID and process start; a second trainer
on a live run is refused with one line naming the owner and writes nothing; an owner that is gone
(killed, rebooted, PID reused) is taken over with a warning; another host's lock is respected unless
the user says it may be stolen (``train --steal-lock``). Readers (sample, export, evaluate, report) take
no lock.
"""
import contextlib
import glob
import logging
import os
import shutil
import socket
import tempfile
import time

from . import locks
from .errors import TinyVideoError

log = logging.getLogger(__name__)

RUN_MARKERS = ("latest", "config.json", "metrics.jsonl", "tensorboard", "samples")
OWNER_LOCK = "owner.lock"


class RunFolderError(TinyVideoError):
    """A run folder that cannot be used (taken by another run, not writable, disk full)."""


def existing_run(run_dir):
    """What in ``run_dir`` shows an earlier run (a short description), or None."""
    if not os.path.isdir(run_dir):
        return None
    names = sorted(os.listdir(run_dir))
    checkpoints = [n for n in names if n.startswith("ckpt-") and os.path.isdir(os.path.join(run_dir, n))]
    if checkpoints:
        return f"{len(checkpoints)} checkpoint(s), newest {checkpoints[-1]}"
    found = [n for n in RUN_MARKERS if n in names]
    return ", ".join(found) if found else None


class RunInUse(RunFolderError):
    """Another live trainer owns the run folder."""


def owner_lock(run_dir):
    return os.path.join(run_dir, OWNER_LOCK)


def take_ownership(run_dir, option="--out", steal=False):
    """Claim ``run_dir``'s owner lock for this process (creating the folder). RunInUse names the owner;
    nothing is written in a folder another trainer owns."""
    if not os.path.isdir(run_dir):
        ensure_writable(run_dir, option)          # creates it, or says why it cannot
    try:
        taken, why = locks.claim(owner_lock(run_dir), steal=steal, reentrant=True)
    except OSError as e:
        raise RunFolderError(f"{option} {run_dir}: cannot write there ({e.strerror or e})") from None
    if not taken:
        owner = locks.read_owner(owner_lock(run_dir))
        hint = " (another host's lock: add --steal-lock if that trainer is known to be gone)" \
            if owner and owner.get("host") != socket.gethostname() else ""
        raise RunInUse(f"{option} {run_dir} is in use by another trainer: "
                       f"{locks.describe(owner)}{hint}")
    if why:
        log.warning("%s: took over the run from a trainer that is gone: %s", run_dir, why)
    ensure_writable(run_dir, option)


def release_ownership(run_dir):
    """Give up the owner lock if this process holds it (never another's)."""
    lock = owner_lock(run_dir)
    if locks.held_here(locks.read_owner(lock)):
        locks.release(lock)


def claim(run_dir, overwrite=False, steal=False):
    """Make ``run_dir`` the folder of a new run, owned by this process. Returns the archive path if an
    earlier run was moved aside, else None. An earlier run with a live trainer is never moved aside."""
    earlier = existing_run(run_dir)
    archived = None
    if earlier and overwrite:
        take_ownership(run_dir, steal=steal)     # refuses a run another trainer is writing
        release_ownership(run_dir)               # the lock moves aside with the run otherwise
    if earlier:
        archive = f"{os.path.normpath(run_dir)}.old-{time.strftime('%Y%m%d-%H%M%S')}"
        if not overwrite:
            raise RunFolderError(
                f"--out {run_dir} already holds a run ({earlier}): continue it with --resume {run_dir}, "
                f"choose another --out, or add --overwrite to move it aside to {archive}")
        try:
            os.rename(run_dir, archive)
        except OSError as e:
            raise RunFolderError(f"--out {run_dir}: cannot move the earlier run aside to {archive} "
                                 f"({e.strerror or e})") from None
        log.warning("moved the earlier run in %s to %s", run_dir, archive)
        archived = archive
    take_ownership(run_dir, steal=steal)
    return archived


def ensure_writable(run_dir, option="--out"):
    """Create ``run_dir`` and prove a file can be written there: one clear line, naming ``option``, if
    not (read-only, a file in the way, disk full)."""
    if os.path.exists(run_dir) and not os.path.isdir(run_dir):
        raise RunFolderError(f"{option} {run_dir}: is a file, not a folder")
    probe = None
    try:
        os.makedirs(run_dir, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=run_dir, prefix=".write-test-")
        with os.fdopen(fd, "wb") as f:
            f.write(b"\0" * 4096)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise RunFolderError(f"{option} {run_dir}: cannot write there ({e.strerror or e})") from None
    finally:
        if probe:
            with contextlib.suppress(OSError):
                os.remove(probe)


def clean_temporaries(run_dir):
    """Remove what a killed checkpoint write left in ``run_dir``; returns the paths removed."""
    removed = []
    for old in glob.glob(os.path.join(glob.escape(run_dir), ".ckpt-*.tmp.old")):
        final = os.path.join(run_dir, os.path.basename(old)[1:].split(".")[0])
        if not os.path.exists(final):
            os.rename(old, final)          # the kill came between "move aside" and "rename in"
            log.warning("restored %s from %s", final, old)
        else:
            shutil.rmtree(old, ignore_errors=True)
            removed.append(old)
    for tmp in glob.glob(os.path.join(glob.escape(run_dir), ".ckpt-*.tmp")):
        shutil.rmtree(tmp, ignore_errors=True)
        removed.append(tmp)
    for tmp in glob.glob(os.path.join(glob.escape(run_dir), ".latest.*.tmp")):   # a killed write of `latest`
        os.remove(tmp)
        removed.append(tmp)
    if removed:
        log.info("removed %d leftover temporary checkpoint folder(s) in %s", len(removed), run_dir)
    return removed
