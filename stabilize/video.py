"""Reading video files (anything FFmpeg decodes), with clear reasons for bad ones."""
import os

import cv2
import imageio_ffmpeg
import numpy as np

from tinyvideo_mx.errors import FileProblem


class VideoError(FileProblem):
    """A video file that cannot be read: ``path`` and ``reason``."""


def _first_line(error):
    lines = [line for line in str(error).splitlines() if line.strip()]
    return lines[-1].strip()[:200] if lines else type(error).__name__


def _open(path):
    """(reader, meta) of ffmpeg decoding ``path`` to BGR, or VideoError with the reason."""
    try:
        reader = imageio_ffmpeg.read_frames(path, pix_fmt="bgr24")
        meta = next(reader)
    except (OSError, RuntimeError, StopIteration) as e:
        if "does not contain any stream" in str(e):      # ffmpeg found no video stream to decode
            raise VideoError(path, "no video stream (audio only?)") from None
        raise VideoError(path, f"cannot be decoded as a video ({_first_line(e)})") from None
    if not meta.get("size") or meta["size"] == (0, 0):
        reader.close()
        raise VideoError(path, "no video stream (audio only?)")
    return reader, meta


def frames(path, fps=0.0, notes=None):
    """Yield the video's BGR frames, decoded by ffmpeg at the native size and rate (as the original:
    ``-f image2pipe`` raw frames; its rgb24 flipped to BGR is ffmpeg's bgr24) or resampled to ``fps``
    (nearest earlier frame). A stream that ends early or breaks mid-way adds a note to ``notes`` (the
    frames read are still used). Unreadable files raise VideoError with the reason."""
    if not os.path.exists(path):
        raise VideoError(path, "file not found")
    if os.path.getsize(path) == 0:
        raise VideoError(path, "empty file")
    reader, meta = _open(path)
    w, h = meta["size"]
    native_fps = float(meta.get("fps") or 0.0)
    announced = int(round(float(meta.get("duration") or 0.0) * native_fps))
    step = native_fps / fps if fps and native_fps else 1.0
    read, next_kept = 0, 0.0
    try:
        for raw in reader:
            if read + 1e-9 >= next_kept:
                yield np.frombuffer(raw, np.uint8).reshape(h, w, 3)
                next_kept += step
            read += 1
    except (OSError, RuntimeError) as e:
        if notes is not None:
            notes.append(f"decoding stopped after {read} frames ({_first_line(e)})")
    finally:
        reader.close()
    if read == 0:
        raise VideoError(path, "no video frames could be decoded (corrupt, truncated or audio only)")
    if notes is not None and announced and read < announced * 0.95:
        notes.append(f"truncated: decoded {read} of about {announced} frames")


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
