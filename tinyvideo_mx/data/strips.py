"""The strip format (docs/original.md §6): one JPEG per clip, frames of ``frame_height`` rows stacked
vertically. Reading reproduces donkey_video2.lua's trainHook exactly:

1. decode to RGB in [0, 1];
2. keep the first ``frames`` frames (start fixed at frame 1, no temporal jitter); repeat the last frame
   when the clip is shorter;
3. shrink each frame to ``size`` x ``size`` by area averaging (torch/image's "bilinear" down-scale is
   area averaging: 128 -> 64 is the exact mean of each 2x2 block);
4. map to [-1, 1] with ``x * 2 - 1``. No augmentation.

Unlike the original, which fed an all-zero (mid-grey) clip when a file failed to load, every problem
raises ``StripError`` naming the file and the reason, so the iterator can report and replace it.
"""
import cv2
import numpy as np

from ..errors import FileProblem
from ..fsutil import read_regular_file, write_bytes_atomic
from .image_input import MAX_IMAGE_BYTES, ImageTooLarge, check_pixels, decode

JPEG_QUALITY = 95  # cv2.imwrite's default, which the original stabiliser used
# Frames are square in the original format; each is squashed to size x size, so a frame more than twice
# as wide as tall (or half as wide) is a mis-sized strip (e.g. a wrong --frame-height), not a clip.
MAX_ASPECT = 2


class StripError(FileProblem):
    """A clip that cannot be used: ``path`` and a human-readable ``reason``."""


def _check_jpeg_complete(data, path):
    # libjpeg decodes a truncated file with only a warning and grey rows; the EOI marker tells.
    if data[:2] == b"\xff\xd8" and data.rstrip(b"\x00\r\n ")[-2:] != b"\xff\xd9":
        raise StripError(path, "truncated JPEG (no end-of-image marker)")


def decode_strip(data, path="<bytes>", frame_height=128, frames=32, size=64):
    """Encoded strip bytes -> float32 array (3, frames, size, size) in [-1, 1]."""
    if len(data) == 0:
        raise StripError(path, "empty file")
    _check_jpeg_complete(data, path)
    # Measured from the header before decoding: a mis-sized strip or a decompression bomb costs nothing.
    try:
        width, height = check_pixels(data, path)
    except ImageTooLarge as e:
        raise StripError(path, e.reason) from None
    except FileProblem:
        raise StripError(path, "not a decodable image (corrupt or unsupported format)") from None
    narrowest, widest = -(-frame_height // MAX_ASPECT), frame_height * MAX_ASPECT
    if not narrowest <= width <= widest:
        raise StripError(path, f"strip is {width} px wide; frames of {frame_height} rows (--frame-height) must be "
                               f"{narrowest} to {widest} px wide")
    if height % frame_height:
        raise StripError(path, f"strip height {height} is not a multiple of the frame height {frame_height}")
    image = decode(data, path)
    if image is None:
        raise StripError(path, "not a decodable image (corrupt or unsupported format)")
    available = height // frame_height
    used = min(available, frames)
    strip = image[: used * frame_height, :, ::-1].astype(np.float32) * (1.0 / 255.0)  # BGR -> RGB, [0, 1]
    if frame_height % size == 0 and width % size == 0:
        # Integer factors: one INTER_AREA call on the whole strip is the exact block mean of every frame
        # (blocks never straddle two frames because frame_height / size is an integer).
        small = cv2.resize(strip, (size, used * size), interpolation=cv2.INTER_AREA).reshape(used, size, size, 3)
    else:
        small = np.stack([cv2.resize(strip[i * frame_height:(i + 1) * frame_height], (size, size),
                                     interpolation=cv2.INTER_AREA) for i in range(used)])
    if used < frames:
        small = np.concatenate([small, np.repeat(small[-1:], frames - used, axis=0)])
    return np.ascontiguousarray(small.transpose(3, 0, 1, 2)) * 2.0 - 1.0


def load_strip(path, frame_height=128, frames=32, size=64):
    """Read and decode one strip file; any failure is a ``StripError`` naming ``path`` (not a regular
    file, larger than an image file may be (image_input.MAX_IMAGE_BYTES), unreadable, undecodable)."""
    try:
        data = read_regular_file(path, MAX_IMAGE_BYTES, "strip file")
    except FileProblem as e:
        raise StripError(path, e.reason) from None
    return decode_strip(data, path, frame_height, frames, size)


def encode_strip(frames_rgb, quality=JPEG_QUALITY):
    """uint8 frames (T, H, W, 3) RGB -> JPEG bytes of the vertical strip (T*H, W, 3)."""
    frames_rgb = np.asarray(frames_rgb)
    if frames_rgb.ndim != 4 or frames_rgb.shape[-1] != 3 or frames_rgb.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames of shape (T, H, W, 3), got {frames_rgb.dtype} {frames_rgb.shape}")
    # cvtColor swaps the channels in one pass; a reversed-stride copy (``[..., ::-1]``) took 10x as long
    strip = cv2.cvtColor(np.ascontiguousarray(frames_rgb).reshape(-1, frames_rgb.shape[2], 3), cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", strip, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("OpenCV could not encode the strip as JPEG")
    return buf.tobytes()


def write_strip(path, frames_rgb, quality=JPEG_QUALITY):
    """Write frames (T, H, W, 3) uint8 RGB as one JPEG strip, atomically."""
    write_bytes_atomic(path, encode_strip(frames_rgb, quality))
