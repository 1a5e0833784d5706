"""Small builders the tests share: random frames, lossless strips, the tiny configuration."""
import cv2
import numpy as np


def random_frames(rng, frames, height, width=None):
    return rng.integers(0, 256, size=(frames, height, width or height, 3), dtype=np.uint8)


def write_png_strip(path, frames_rgb):
    """A lossless strip (PNG) so decoded values can be compared exactly."""
    strip = frames_rgb.reshape(-1, frames_rgb.shape[2], 3)[:, :, ::-1]
    assert cv2.imwrite(str(path), np.ascontiguousarray(strip))
    return str(path)


def tiny_config(**overrides):
    from tinyvideo_mx.config import make_config
    return make_config("tiny", **overrides)
