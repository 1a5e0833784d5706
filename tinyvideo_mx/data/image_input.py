"""How every image enters the project: measured from its header, then decoded with its warnings named.

A 631-byte JPEG can claim 16384 x 16384 pixels; OpenCV would then allocate 768 MB and spend seconds per
decode. Every image the project reads - training strips, conditional input images, server uploads -
is measured here first (Pillow reads only the header) and refused beyond ``MAX_PIXELS``. The
conditional model's input images (``load_image`` / ``decode_image``: files and uploads) come in here too.

libjpeg prints "Corrupt JPEG data: ..." straight to the process's stderr (file descriptor 2), with no
file name, and OpenCV offers no hook. ``decode`` catches that output around the decode (fd 2 pointed at a
temporary file for the few milliseconds of one decode, one decode at a time) and logs it as a warning
naming the file, once per file; anything else written to stderr meanwhile is passed through unchanged.
"""
import io
import logging
import os
import sys
import tempfile
import threading
import warnings

import cv2
import numpy as np
from PIL import Image

from ..errors import FileProblem
from ..fsutil import read_regular_file

log = logging.getLogger(__name__)
LIBJPEG_MESSAGES = ("Corrupt JPEG data", "Premature end of JPEG file", "Invalid SOS parameters",
                    "Warning:", "libpng warning")
_STDERR_LOCK = threading.Lock()
_warned = set()

MAX_PIXELS = 40_000_000     # 40 megapixels: any camera photo; a strip of 128-px frames would be 2,400 frames


class ImageTooLarge(FileProblem):
    pass


def image_size(data):
    """(width, height) from the header of encoded image bytes, or None if no known format matches.
    Raises ImageTooLarge's reason as a ValueError for headers past Pillow's own bomb limit (~179 MP)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                return image.size
    except Image.DecompressionBombError as e:
        pixels = next((int(t) for t in str(e).replace("(", " ").split() if t.isdigit()), None)
        raise ValueError(f"image header claims {pixels:,} pixels" if pixels else "image header claims too many pixels")
    except Exception:     # not an image Pillow knows, or a header too damaged to read
        return None


def check_pixels(data, path, max_pixels=MAX_PIXELS):
    """(width, height) of ``data``; ImageTooLarge (naming ``path``) past ``max_pixels``, FileProblem if
    the header cannot be read."""
    limit = f"the limit is {max_pixels:,} pixels; refused before decoding"
    try:
        size = image_size(data)
    except ValueError as e:
        raise ImageTooLarge(path, f"{e}; {limit}") from None
    if size is None:
        raise FileProblem(path, "not a decodable image (unknown format or damaged header)")
    width, height = size
    if width * height > max_pixels:
        raise ImageTooLarge(path, f"image header claims {width}x{height} pixels; {limit}")
    return width, height


def decode(data, path, flags=cv2.IMREAD_COLOR):
    """``cv2.imdecode`` of ``data`` (None if OpenCV cannot decode it); libjpeg's warnings are logged with
    ``path`` instead of printed anonymously."""
    buffer = np.frombuffer(data, np.uint8)
    with _STDERR_LOCK:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            with tempfile.TemporaryFile() as capture:
                os.dup2(capture.fileno(), 2)
                try:
                    image = cv2.imdecode(buffer, flags)
                finally:
                    os.dup2(saved, 2)
                capture.seek(0)
                printed = capture.read().decode("utf-8", "replace")
        finally:
            os.close(saved)
    for line in printed.splitlines():
        if line.startswith(LIBJPEG_MESSAGES):
            if (path, line) not in _warned:
                _warned.add((path, line))
                log.warning("%s: %s", path, line)
        elif line:
            sys.stderr.write(line + "\n")     # not ours: pass it on
    return image


class ImageError(FileProblem):
    """An input image that cannot be read."""


# The largest file read as an image or a strip: an uncompressed image at the pixel limit (3 bytes a pixel),
# more than any JPEG or PNG of that many pixels needs, so no real photo or strip is refused.
MAX_IMAGE_BYTES = 3 * MAX_PIXELS


def load_image(path, size):
    """Any image file -> (3, size, size) float32 in [-1, 1] (see ``decode_image``). Only a regular file of
    at most MAX_IMAGE_BYTES is read."""
    try:
        data = read_regular_file(path, MAX_IMAGE_BYTES, "image file")
    except FileProblem as e:
        raise ImageError(path, e.reason) from None
    return decode_image(np.frombuffer(data, np.uint8), size, path)


def decode_image(data, size, name="<bytes>"):
    """Encoded image bytes -> (3, size, size) float32 in [-1, 1]: centre square crop (the stabiliser's
    short-side resize + centre crop) and area averaging (the data path's down-scaling)."""
    if not len(data):
        raise ImageError(name, "empty file")
    try:
        check_pixels(data, name)          # from the header, before any decoding
    except ImageTooLarge as e:
        raise ImageError(name, e.reason) from None
    except FileProblem:
        raise ImageError(name, "not a readable image") from None
    image = decode(data, name)
    if image is None:
        raise ImageError(name, "not a readable image")
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = image[top:top + side, left:left + side, ::-1].astype(np.float32) / 255.0
    small = cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA)
    return small.transpose(2, 0, 1) * 2.0 - 1.0
