"""Videos with known camera motion over a textured scene: the ground truth for tests and benchmarks
(after stabilisation, consecutive frames should not move)."""
import cv2
import numpy as np


def texture(seed, size, tint=(1.0, 1.0, 1.0)):
    """A smooth random colour texture (uint8 BGR, size x size) with detail at two scales."""
    rng = np.random.default_rng(seed)
    noise = rng.uniform(0, 255, (size // 8, size // 8, 3)).astype(np.float32)
    image = cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC)
    image += cv2.resize(rng.uniform(-60, 60, (size // 2, size // 2, 3)).astype(np.float32), (size, size))
    return np.clip(image * np.array(tint), 0, 255).astype(np.uint8)


def camera(scene, n, motion, size=(240, 320)):
    """n frames (h, w) = ``size`` of a camera over ``scene``; motion(t) -> (dx, dy, degrees, zoom)."""
    h, w = size
    cy, cx = scene.shape[0] / 2, scene.shape[1] / 2
    out = []
    for t in range(n):
        dx, dy, angle, zoom = motion(t)
        M = cv2.getRotationMatrix2D((cx, cy), angle, zoom)
        M[0, 2] += -cx + w / 2 + dx
        M[1, 2] += -cy + h / 2 + dy
        out.append(cv2.warpAffine(scene, M, (w, h), flags=cv2.INTER_LINEAR))
    return out


MOTIONS = {
    "translate": lambda t: (2.5 * t, 1.2 * t, 0.0, 1.0),
    "rotate": lambda t: (0.0, 0.0, 0.4 * t, 1.0),
    "zoom": lambda t: (0.0, 0.0, 0.0, 1.0 + 0.006 * t),
}
