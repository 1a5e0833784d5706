import os

# tinyvideo_mx before MXNet and OpenCV (it configures them as they load): not sorted
# isort: off
import tinyvideo_mx  # noqa: F401  (first: sets MXNet's thread count, as the CLI does, before mxnet loads)
import cv2
# isort: on
import numpy as np
import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """The synthetic dataset cache lives in the test session's temporary folder."""
    os.environ["TINYVIDEO_MX_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield


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
