"""Measure an image from its header before anything decodes it.

A 631-byte JPEG can claim 16384 x 16384 pixels; OpenCV would then allocate 768 MB and spend seconds per
decode. Every image the project reads - training strips, conditional input images, server uploads -
is measured here first (Pillow reads only the header) and refused beyond ``MAX_PIXELS``.
"""
import io
import warnings

from PIL import Image

from .errors import FileProblem

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
