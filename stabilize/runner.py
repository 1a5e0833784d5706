"""Many videos -> strips + one list file, resumable and safe to interrupt.

Layout: ``<out>/<video name>-<8 hex of its absolute path>/0000.jpg ...`` plus ``done.json`` in that
folder, written last: a rerun skips every video whose ``done.json`` exists. Strips, ``done.json``,
the list file and the report are written atomically, so an interrupted run never leaves a half-written
file under a final name. Several runs may share an output folder: a video is claimed with an atomic
``mkdir`` of ``<folder>.lock`` (as the original did), so no two workers write the same folder; the lock
names its owner and is taken over once that process is gone (locks.py).
"""
import hashlib
import json
import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor

from tinyvideo_mx import locks
from tinyvideo_mx.data.listfile import write_list
from tinyvideo_mx.data.strips import write_strip
from tinyvideo_mx.errors import SettingError
from tinyvideo_mx.fsutil import write_text_atomic
from tinyvideo_mx.runtime.memory import keep_freed_memory

from .config import StabilizeConfig
from .homography import make_tracker
from .stabilizer import clips
from .video import VideoError

log = logging.getLogger(__name__)
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ogv")
LIST_NAME = "list.txt"
REPORT_NAME = "report.json"
FINISHED = ("ok", "no clips")     # statuses of a video that is done (a rerun skips it)


def video_folder(out_dir, path):
    stem = os.path.splitext(os.path.basename(path))[0]
    digest = hashlib.sha1(os.path.abspath(path).encode()).hexdigest()[:8]
    return os.path.join(out_dir, f"{stem}-{digest}")


def find_videos(inputs):
    """Files given directly, files listed in .txt lists, and video files under folders (sorted)."""
    found = []
    for item in inputs:
        if os.path.isdir(item):
            for root, _, names in os.walk(item):
                found += [os.path.join(root, n) for n in sorted(names) if n.lower().endswith(VIDEO_EXTENSIONS)]
        elif item.endswith(".txt"):
            with open(item) as f:
                found += [line.strip() for line in f if line.strip()]
        else:
            found.append(item)
    return found


def stabilize_video(path, out_dir, config):
    """Stabilise one video into its folder. Returns its record (also saved as done.json)."""
    folder = video_folder(out_dir, path)
    done = os.path.join(folder, "done.json")
    if os.path.exists(done):
        with open(done) as f:
            return dict(json.load(f), skipped=True)
    lock = folder + ".lock"
    os.makedirs(out_dir, exist_ok=True)
    claimed, why_not = locks.claim(lock)
    if not claimed:
        return {"video": path, "status": "locked", "reason": why_not, "clips": [], "dropped": {}}
    _held.append(lock)
    start, frames_out, notes = time.time(), 0, []
    # spans: [first, end) decoded-frame indices of each clip, so a clip can be traced to its source
    record = {"video": path, "folder": os.path.basename(folder), "clips": [], "spans": [], "dropped": {},
              "notes": notes}
    try:
        for kind, value in clips(path, config, notes):
            if kind == "clip":
                first, frames = value
                name = f"{len(record['clips']):04d}.jpg"
                write_strip(os.path.join(folder, name), frames, config.jpeg_quality)
                record["clips"].append(name)
                record["spans"].append([first, first + len(frames)])
                frames_out += len(frames)
            else:
                record["dropped"][value] = record["dropped"].get(value, 0) + 1
        record["status"] = "ok" if record["clips"] else "no clips"
    except VideoError as e:
        record.update(status="unreadable", reason=e.reason)
    except Exception as e:                       # one bad file never ends the batch
        record.update(status="error", reason=f"{type(e).__name__}: {e}")
    finally:
        locks.release(lock)
        _held.remove(lock)
    record["seconds"] = round(time.time() - start, 3)
    record["frames_written"] = frames_out
    if record["status"] in FINISHED:
        write_text_atomic(done, json.dumps(record, indent=2))   # unreadable files are retried next run
    return record


def _work(args):
    path, out_dir, config = args
    if config.motion == "features":
        # once per process: matching full frames (the faithful mode) runs 1.5x faster on reused memory; the flow
        # measured within noise, more often below than above, so it keeps glibc's defaults (runtime/memory.py)
        keep_freed_memory()
    return stabilize_video(path, out_dir, config)


_held = []    # the lock this process holds while it works on a video


def _exit_with_parent(parent):
    """Worker initialiser: end this process when the process that started it is gone (kill -9 of the
    parent leaves a pool's workers running otherwise, idle and holding memory), releasing its lock so a
    rerun need not wait for the takeover of a dead owner's."""
    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        for lock in list(_held):
            locks.release(lock)
        os._exit(1)
    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


def stabilize_many(inputs, out_dir, config=None, processes=1, progress=False):
    """Stabilise every video in ``inputs``; write ``list.txt`` (every clip of every finished video,
    relative to ``out_dir``) and ``report.json``. Returns the report."""
    config = config or StabilizeConfig()
    make_tracker(config)              # a bad motion / features / matcher setting: one error now, not one per video
    videos = find_videos(inputs)
    if not videos:
        raise SettingError(f"no video files found in {', '.join(map(str, inputs))} "
                           f"(looked for {' '.join(VIDEO_EXTENSIONS)})")
    start = time.time()
    jobs = [(v, out_dir, config) for v in videos]
    if processes > 1:
        # spawn, not fork: a process that already runs MXNet / OpenCV threads can fork children that
        # deadlock on a lock held at fork time (seen: 1 hang in 20 test-suite runs).
        with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_exit_with_parent, initargs=(os.getpid(),)) as pool:
            records = _collect(pool.map(_work, jobs), len(jobs), progress)
    else:
        records = _collect(map(_work, jobs), len(jobs), progress)
    entries = []
    for name in sorted(os.listdir(out_dir)) if os.path.isdir(out_dir) else []:
        done = os.path.join(out_dir, name, "done.json")
        if os.path.isfile(done):
            with open(done) as f:
                entries += [f"{name}/{clip}" for clip in json.load(f)["clips"]]
    write_list(os.path.join(out_dir, LIST_NAME), entries)
    seconds = time.time() - start
    new = [r for r in records if not r.get("skipped")]
    dropped = {}
    for r in new:                         # videos finished by an earlier run were counted by that run
        for reason, n in r.get("dropped", {}).items():
            key = reason.split(" (")[0]
            dropped[key] = dropped.get(key, 0) + n
    report = {
        "videos": len(records), "videos_processed": len(new), "videos_skipped_done": len(records) - len(new),
        "videos_failed": {r["video"]: r.get("reason", r["status"]) for r in records
                          if r["status"] not in FINISHED + ("locked",)},
        "videos_locked": {r["video"]: r["reason"] for r in records if r["status"] == "locked"},
        "clips_written": sum(len(r["clips"]) for r in new), "clips_listed": len(entries),
        "clips_dropped": dropped, "frames_written": sum(r.get("frames_written", 0) for r in new),
        "seconds": round(seconds, 3), "config": config.to_dict(), "per_video": records,
    }
    report["frames_per_second"] = round(report["frames_written"] / seconds, 2) if seconds else 0.0
    write_text_atomic(os.path.join(out_dir, REPORT_NAME), json.dumps(report, indent=2))
    return report


def summary(report, out_dir):
    """The one line that sums up ``stabilize_many``'s report."""
    return (f"{report['videos']} videos, {report['clips_written']} clips written "
            f"({report['clips_listed']} listed in {os.path.join(out_dir, LIST_NAME)}), "
            f"{sum(report['clips_dropped'].values())} dropped, {report['frames_per_second']:.1f} frames/s")


def failure(report, out_dir):
    """Why the run did not do all it was asked (a video unreadable or held by another live worker, or no
    clip written at all), in one line; None when it did."""
    failed, locked, n = len(report["videos_failed"]), len(report["videos_locked"]), report["videos"]
    if failed or locked:
        parts = ([f"{failed} of {n} videos could not be read (named above)"] * bool(failed)
                 + [f"{locked} of {n} videos are held by another worker (named above; rerun when it is done)"]
                 * bool(locked))
        return ("no clips written: " if not report["clips_listed"] else "") + "; ".join(parts)
    if report["clips_listed"] == 0:
        return (f"no clips written: no video gave a stable shot of at least {report['config']['min_frames']} "
                f"frames (drops by reason in {os.path.join(out_dir, REPORT_NAME)})")
    return None


def _collect(results, total, progress):
    """The records, each problem logged once, as its video finishes."""
    if progress:
        from tqdm import tqdm
        results = tqdm(results, total=total, unit="video", desc="stabilize")
    records = []
    for r in results:
        if r["status"] not in FINISHED:
            log.warning("skipped %s: %s", r["video"], r.get("reason", r["status"]))
        records.append(r)
    return records
