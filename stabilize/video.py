"""Reading video files (anything FFmpeg decodes), with clear reasons for bad ones."""
import os
import signal
import subprocess

import cv2
import imageio_ffmpeg
import numpy as np

from tinyvideo_mx.errors import FileProblem, SettingError

# OpenCV's FFmpeg libraries print their complaints about damaged streams to stderr; where a stream is damaged
# the ffmpeg program decodes it again and its reason goes into the notes (_opencv_decoded), so they stay quiet
# (read when OpenCV first opens a video; a value the user set is kept).
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "0")


class VideoError(FileProblem):
    """A video file that cannot be read: ``path`` and ``reason``."""


def _last_line(error):
    """The last line of an error's text: where the ffmpeg program's complaint is, after its banner."""
    lines = [line for line in str(error).splitlines() if line.strip()]
    return lines[-1].strip()[:200] if lines else type(error).__name__


def _open(path, alone=False):
    """(reader, meta) of ffmpeg decoding ``path`` to BGR, or VideoError with the reason. ``alone``: the
    program is the only decoder asked for (``decoder="ffmpeg"``), so a crash's reason names OpenCV's."""
    try:
        reader = imageio_ffmpeg.read_frames(path, pix_fmt="bgr24")
        meta = next(reader)
    except (OSError, RuntimeError, StopIteration) as e:
        if "does not contain any stream" in str(e):      # ffmpeg found no video stream to decode
            raise VideoError(path, "no video stream (audio only?)") from None
        crash = _crash_signal(path) if "Could not load meta information" in str(e) else None
        if crash:
            reason = f"the ffmpeg program crashed reading it ({crash})"
            raise VideoError(path, reason + ("; OpenCV's decoder may read it: --set decoder=opencv" if alone else "")) from None
        raise VideoError(path, f"cannot be decoded as a video ({_last_line(e)})") from None
    if not meta.get("size") or meta["size"] == (0, 0):
        reader.close()
        raise VideoError(path, "no video stream (audio only?)")
    return reader, meta


def _crash_signal(path):
    """The signal's name if the ffmpeg program dies of one while opening ``path``, else None. Asked only after
    the program ended without describing the stream, which then leaves only its banner to quote: the static
    ffmpeg 4.2.2 that imageio-ffmpeg 0.5.1 ships died of SIGSEGV opening every MPEG transport stream (.ts)
    tried on the AVX2-only EPYC that docs/performance.md names (2026-12-07)."""
    try:
        ended = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", path],
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if ended.returncode >= 0:
        return None
    try:
        return signal.Signals(-ended.returncode).name
    except ValueError:
        return f"signal {-ended.returncode}"


DECODERS = ("opencv", "ffmpeg")
# How far from where OpenCV's decoder stopped ``_opencv_decoded`` looks, in FFmpeg's frames, for the last frame
# OpenCV gave: the ffmpeg program repeats a frame where timestamps leave a gap (the first frame of Megamind.avi
# and tree.avi), so its frame numbers can run ahead of OpenCV's.
REALIGN_WINDOW = 4


def check_decoder(decoder):
    if decoder not in DECODERS:
        raise SettingError(f"decoder must be one of {', '.join(DECODERS)}, got {decoder!r}")


def frames(path, fps=0.0, notes=None, decoder="opencv"):
    """Yield the video's BGR frames at the native size and rate, or resampled to ``fps`` (nearest earlier
    frame). ``decoder``: "opencv" (OpenCV's FFmpeg libraries, in this process; ``_opencv_decoded``) or
    "ffmpeg" (the ffmpeg program's raw frames through a pipe, as the original: ``-f image2pipe``, its
    rgb24 flipped to BGR being ffmpeg's bgr24). A stream that ends early or breaks mid-way adds a note to
    ``notes`` (the frames read are still used). Unreadable files raise VideoError with the reason."""
    check_decoder(decoder)
    if not os.path.exists(path):
        raise VideoError(path, "file not found")
    if os.path.getsize(path) == 0:
        raise VideoError(path, "empty file")
    source = _opencv_decoded(path, notes) if decoder == "opencv" else _ffmpeg_decoded(path, notes, alone=True)
    try:
        native_fps = next(source)                 # each decoder's first item: the stream's frame rate
        step = native_fps / fps if fps and native_fps else 1.0
        next_kept = 0.0
        for read, frame in enumerate(source):
            if read + 1e-9 >= next_kept:
                yield frame
                next_kept += step
    finally:
        source.close()


def _ffmpeg_decoded(path, notes, announced=0, alone=False):
    """The frame rate, then the frames, of the ffmpeg program decoding ``path``; VideoError if none decode.
    ``announced``: the frames the container announces, where another reader knows better than the program's
    duration (a truncated AVI's header still counts them all). ``alone``: as ``_open``."""
    reader, meta = _open(path, alone)
    w, h = meta["size"]
    native_fps = float(meta.get("fps") or 0.0)
    announced = max(announced, int(round(float(meta.get("duration") or 0.0) * native_fps)))
    read = 0
    try:
        yield native_fps
        for raw in reader:
            yield np.frombuffer(raw, np.uint8).reshape(h, w, 3)
            read += 1
    except (OSError, RuntimeError) as e:
        if notes is not None:
            notes.append(f"decoding stopped after {read} frames ({_last_line(e)})")
    finally:
        reader.close()
    if read == 0:
        raise VideoError(path, "no video frames could be decoded (corrupt, truncated or audio only)")
    if notes is not None and announced and read < announced * 0.95:
        notes.append(f"truncated: decoded {read} of about {announced} frames")


LOG_LEVEL_ERROR = 2     # cv::utils::logging::LOG_LEVEL_ERROR (the Python binding names no constants for it)


def _quietly_opened(path):
    """cv2.VideoCapture of ``path`` through FFmpeg, without OpenCV's own warning where it cannot open it
    ("[ WARN:0@0.06] global cap.cpp:204 open VIDEOIO(FFMPEG): backend is generally available but can't be used
    to capture by name", printed into the progress bar): the program then decodes the file, and a file neither
    reads is named once, with the program's reason (VideoError). OpenCV's log level is restored after."""
    level = cv2.getLogLevel()
    cv2.setLogLevel(min(level, LOG_LEVEL_ERROR))
    try:
        return cv2.VideoCapture(path, cv2.CAP_FFMPEG)
    finally:
        cv2.setLogLevel(level)


def _opencv_decoded(path, notes):
    """The frame rate, then the frames, of OpenCV's VideoCapture: the same FFmpeg decoding as the program's,
    bit for bit on every bench video, in this process - no second process, no copy through a pipe: 0.9-1.4
    ms of CPU per 480p-720p frame against 3.5-4.7 ms (docs/performance.md). But it gives no reasons, it skips
    the frames a stream marks as repeated (tree.avi holds 68 pictures shown as 444 frames; the program
    repeats them, as the time base needs) and it ends a stream early at damage. So it is trusted only while
    each frame's timestamp is the next frame's time: at a gap, or where it stops short of the length the
    container announces, the program decodes on from the frame after the last one OpenCV gave (``_after``),
    and says why if it stops too. A file OpenCV cannot open, or whose length or rate it cannot tell, the
    program decodes from the start."""
    capture = _quietly_opened(path)
    opened = capture.isOpened()
    announced = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if opened else 0
    fps = capture.get(cv2.CAP_PROP_FPS) if opened else 0.0
    if announced <= 0 or not fps > 0:
        capture.release()
        yield from _ffmpeg_decoded(path, notes)
        return
    read, last, start, gap = 0, None, None, False
    try:
        yield fps
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            seconds = capture.get(cv2.CAP_PROP_POS_MSEC) / 1000    # 0: no timestamp (Megamind.avi's last frame)
            start = seconds if start is None else start
            if seconds and abs((seconds - start) * fps - read) > 0.5:
                gap = True
                break
            yield frame
            read, last = read + 1, frame
    finally:
        capture.release()
    if not gap and read >= announced - 1:     # the whole stream (a length estimated from the duration may be 1 over)
        return
    rest = _ffmpeg_decoded(path, notes, announced)
    try:
        next(rest)
        yield from _after(rest, last, read, notes)
    finally:
        rest.close()


def _after(frames_, last, count, notes):
    """The frames of ``frames_`` after ``last``, the ``count``-th frame another decoder gave: after the first
    frame equal to it within REALIGN_WINDOW frames of that position, else (with a note) from frame ``count``
    on. ``last`` None (no frame given): all of them."""
    if last is None:
        yield from frames_
        return
    first = max(0, count - 1 - REALIGN_WINDOW)
    near = []                                      # frames first, first + 1, ... looked at
    for index, frame in enumerate(frames_):
        if index < first:
            continue
        near.append(frame)
        if np.array_equal(frame, last):
            yield from frames_
            return
        if index >= count - 1 + REALIGN_WINDOW:
            break
    if notes is not None:
        notes.append(f"OpenCV's decoder stopped after {count} frames and FFmpeg's nearby frames differ from its "
                     f"last: continued at FFmpeg's frame {count}")
    yield from near[count - first:]
    yield from frames_


def reduced_grey(frame, short_side):
    """(grey copy of a BGR frame with its short side reduced to ``short_side`` - area-averaged, sizes
    rounded; the frame's own size when no larger, or ``short_side`` is 0 -, (fx, fy)): a pixel x of the
    copy covers frame pixels x * fx ... (x + 1) * fx."""
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    h, w = grey.shape
    if not short_side or min(w, h) <= short_side:
        return grey, (1.0, 1.0)
    scale = short_side / min(w, h)
    small_w, small_h = int(round(w * scale)), int(round(h * scale))
    return cv2.resize(grey, (small_w, small_h), interpolation=cv2.INTER_AREA), (w / small_w, h / small_h)


def to_frame_coordinates(points, factors):
    """Positions found on a ``reduced_grey`` copy, in the frame's pixel coordinates (pixel centres)."""
    if factors == (1.0, 1.0):
        return points
    return (points + 0.5) * np.float32(factors) - 0.5


def crop_geometry(shape, size):
    """(resized height, width, top, left) of ``resize_and_crop``: the short side to ``size``, the long
    side truncated as the original's ``int(w * scale)``, then the centre square's corner."""
    h, w = shape[:2]
    scale = size / min(h, w)
    nh, nw = max(size, int(h * scale)), max(size, int(w * scale))
    return nh, nw, (nh - size) // 2, (nw - size) // 2


def resize_and_crop(frame, size):
    """The original's process_im: short side -> ``size`` (bilinear; the long side truncated, as its
    ``int(w * scale)``), then the centre square."""
    nh, nw, top, left = crop_geometry(frame.shape, size)
    resized = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return resized[top:top + size, left:left + size]


def to_square(shape, size):
    """The 3x3 map from a frame's pixel coordinates to those of ``resize_and_crop(frame, size)``: warping
    the frame with it samples the positions that resize's bilinear interpolation samples (pixel centres:
    output x reads frame x' = (x + left + 0.5) * w / nw - 0.5), so a homography and the resize become one
    warp."""
    h, w = shape[:2]
    nh, nw, top, left = crop_geometry(shape, size)
    fx, fy = nw / w, nh / h
    return np.array([[fx, 0.0, 0.5 * fx - 0.5 - left], [0.0, fy, 0.5 * fy - 0.5 - top], [0.0, 0.0, 1.0]])


def write_video(path, frames_bgr, fps=25.0):
    """Write BGR frames with OpenCV (MJPG in .avi, mp4v in .mp4): test fixtures and examples."""
    h, w = frames_bgr[0].shape[:2]
    fourcc = cv2.VideoWriter_fourcc(*("mp4v" if path.endswith(".mp4") else "MJPG"))
    writer = cv2.VideoWriter(path, fourcc, fps, (w, h))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path}")
    for f in frames_bgr:
        writer.write(np.ascontiguousarray(f))
    writer.release()
