"""Owner locks that name their owner and outlive no one: one stabiliser worker per video
(stabilize/runner.py), one trainer per run folder (run_folder.py).

The original stabiliser claimed a video with an atomic ``mkdir`` of ``<folder>.lock`` and removed it when
done, so a crash left the lock behind and every later run skipped the video for ever. Here the lock
folder holds ``owner.json`` (host, PID, the process's start time, the time of the claim); a lock whose
owner is gone - same host, and that PID no longer runs or now belongs to a process started at another
time - is taken over. A lock held by a live process, or by another host, is respected and reported
(``steal=True`` takes it anyway: for a host that is known to be down). With ``reentrant=True`` (a run
folder: one process may open its own run twice) a process that already holds the lock may claim it again.
"""
import json
import os
import socket
import time
import uuid

OWNER = "owner.json"
UNNAMED_GRACE = 60.0   # s: a lock folder without owner.json is being created, or its creator died in between


def _stat(pid):
    """The fields of /proc/<pid>/stat after the command name (state first), or None where unknown."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _start_time(fields):
    try:
        return int(fields[19])
    except (TypeError, IndexError, ValueError):
        return None


def process_start(pid):
    """The start time of process ``pid`` in clock ticks since boot (Linux), or None where unknown."""
    return _start_time(_stat(pid))


def running(pid, start):
    """True if ``pid`` is the process that started at ``start`` (None: any process with that PID) and
    has not exited (a zombie - exited, not yet reaped by its parent - holds nothing)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass                       # exists, owned by another user
    fields = _stat(pid)                  # one read: state and start time of the same process
    if fields and fields[0] in ("Z", "X"):
        return False
    now = _start_time(fields)
    return start is None or now is None or now == start


def owner_record():
    return {"host": socket.gethostname(), "pid": os.getpid(), "process_start": process_start(os.getpid()),
            "claimed": time.strftime("%Y-%m-%d %H:%M:%S")}


def read_owner(lock):
    try:
        with open(os.path.join(lock, OWNER)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def describe(owner):
    if not owner:
        return "an unnamed owner"
    return f"PID {owner.get('pid')} on {owner.get('host')} since {owner.get('claimed')}"


def stale(lock):
    """Why ``lock`` is abandoned, or None if its owner may still be working."""
    owner = read_owner(lock)
    if owner is None:
        try:
            age = time.time() - os.stat(lock).st_mtime
        except FileNotFoundError:
            return "released"
        return f"no owner recorded for {age:.0f} s" if age > UNNAMED_GRACE else None
    if owner.get("host") != socket.gethostname():
        return None                # cannot see another machine's processes
    if not running(int(owner.get("pid", -1)), owner.get("process_start")):
        return f"its owner ({describe(owner)}) is gone"
    return None


def held_here(owner):
    """True if ``owner`` (an owner record) is this very process."""
    return bool(owner) and owner.get("host") == socket.gethostname() and owner.get("pid") == os.getpid() \
        and owner.get("process_start") == process_start(os.getpid())


def claim(lock, steal=False, reentrant=False):
    """Take ``lock`` for this process: (True, None), (True, why an earlier owner's lock was taken over),
    or (False, why not). A stale lock is taken over; a live or other host's one only with ``steal``."""
    taken_over = None
    for _ in range(3):
        try:
            os.mkdir(lock)
        except FileExistsError:
            owner = read_owner(lock)
            if reentrant and held_here(owner):
                return True, None
            reason = stale(lock)
            if reason is None and steal:
                reason = f"taken from {describe(owner)} (steal)"
            if reason is None:
                return False, f"locked by {describe(owner)} ({lock})"
            # Move it aside first: of several workers that found it stale, exactly one rename succeeds.
            aside = f"{lock}.stale-{uuid.uuid4().hex[:8]}"
            try:
                os.rename(lock, aside)
            except OSError:
                continue
            if not steal and stale(aside) is None:   # another worker took it over between our check and the rename
                try:
                    os.rename(aside, lock)
                except OSError:
                    pass
                return False, f"locked by {describe(read_owner(lock))} ({lock})"
            release(aside)
            taken_over = reason
            continue
        with open(os.path.join(lock, OWNER), "w") as f:
            json.dump(owner_record(), f)
        return True, taken_over
    return False, f"could not take over {lock}"


def release(lock):
    """Remove ``lock`` (its owner file, then the folder); nothing if it is already gone."""
    try:
        os.remove(os.path.join(lock, OWNER))
    except OSError:
        pass
    try:
        os.rmdir(lock)
    except OSError:
        pass
