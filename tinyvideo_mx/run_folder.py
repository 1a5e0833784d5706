"""The run folder: a new run never destroys or hides another, and a killed write leaves no litter.

``claim`` is called once by a new run (never by a resume): a folder that already holds a run -
checkpoints, ``latest``, ``config.json``, metrics or TensorBoard logs - is refused with one line saying
what to do, or, with ``overwrite=True``, moved aside whole to ``<folder>.old-<time>`` (nothing is
deleted). ``clean_temporaries`` runs at every start, new or resumed: it removes the temporary folders a
killed checkpoint write left (``.ckpt-*.tmp``) and puts back a checkpoint that was moved aside for
replacement when the kill came between the two renames.
"""
import contextlib
import glob
import logging
import os
import shutil
import tempfile
import time

from .errors import TinyVideoError

log = logging.getLogger(__name__)

RUN_MARKERS = ("latest", "config.json", "metrics.jsonl", "tensorboard", "samples")


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


def claim(run_dir, overwrite=False):
    """Make ``run_dir`` the folder of a new run. Returns the archive path if an earlier run was moved
    aside, else None."""
    earlier = existing_run(run_dir)
    archived = None
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
    ensure_writable(run_dir)
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
