"""The embedded default dataset: static textured backgrounds with one moving coloured shape, written in
the strip format so ``tinyvideo-mx train`` with no data argument trains through the real data path.

It is built for the two-stream model: each clip's background never moves (what the 2-D stream and
``1 - m`` should explain) and a single object moves on a straight, bouncing path (what the 3-D stream
and the mask should explain). Generation is deterministic in (seed, index) and cached on disk.
"""
import concurrent.futures
import hashlib
import json
import os

import cv2
import numpy as np

from ..fsutil import write_text_atomic
from .listfile import write_list
from .strips import write_strip

VERSION = 3
LIST_NAME = "list.txt"
GENERATION_THREADS = 2


def background(rng, size):
    """A static scene: sky/ground split at a random horizon, colour gradients and soft blotches."""
    y = np.linspace(0.0, 1.0, size, dtype=np.float32)[:, None, None]
    sky_top, sky_bottom, ground_top, ground_bottom = rng.uniform(0.05, 0.95, size=(4, 3)).astype(np.float32)
    horizon = rng.uniform(0.35, 0.7)
    sky = sky_top + (sky_bottom - sky_top) * (y / horizon)
    ground = ground_top + (ground_bottom - ground_top) * ((y - horizon) / (1 - horizon))
    image = np.where(y < horizon, sky, ground) * np.ones((1, size, 1), np.float32)
    for _ in range(3):   # faint low-frequency texture
        cx, cy = rng.uniform(0, size, 2)
        radius = rng.uniform(0.1, 0.25) * size
        yy, xx = np.mgrid[:size, :size]
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * radius ** 2)).astype(np.float32)
        image += blob[..., None] * rng.uniform(-0.12, 0.12, 3).astype(np.float32)
    return np.clip(image, 0.0, 1.0)


def _object(rng, size):
    """(colour, radius): a white object (one appearance to learn, visible on every background) whose
    diameter is 40-50 % of the frame: at the demo's 32x32 it still spans 13-16 pixels."""
    return (1.0, 1.0, 1.0), rng.uniform(0.2, 0.25) * size


def render(scene, colour, radius, square, position, velocity, frames):
    """uint8 frames of one object (disc or square) moving over ``scene``, bouncing off the borders."""
    size = scene.shape[0]
    position, velocity = np.array(position, float), np.array(velocity, float)
    out = np.empty((frames, size, size, 3), np.uint8)
    for t in range(frames):
        frame = scene.copy()
        cx, cy = (int(round(v * 16)) for v in position)   # sub-pixel drawing (shift=4)
        r = int(round(radius * 16))
        if square:
            cv2.rectangle(frame, (cx - r, cy - r), (cx + r, cy + r), colour, -1, cv2.LINE_AA, shift=4)
        else:
            cv2.circle(frame, (cx, cy), r, colour, -1, cv2.LINE_AA, shift=4)
        out[t] = np.clip(frame * 255.0 + 0.5, 0, 255).astype(np.uint8)
        position = position + velocity
        for axis in range(2):   # bounce off the borders
            if not radius <= position[axis] <= size - radius:
                velocity[axis] = -velocity[axis]
                position[axis] = np.clip(position[axis], radius, size - radius)
    return out


def clip(seed, index, frames=32, size=128):
    """uint8 frames (frames, size, size, 3): clip ``index`` of the dataset with ``seed``."""
    rng = np.random.default_rng([seed, index])
    scene = background(rng, size)
    colour, radius = _object(rng, size)
    position = rng.uniform(radius, size - radius, 2)
    angle = rng.uniform(0, 2 * np.pi)
    velocity = rng.uniform(0.04, 0.06) * size * np.array([np.cos(angle), np.sin(angle)])   # 0.6-1 diameter in 16 frames
    square = rng.random() < 0.5
    return render(scene, colour, radius, square, position, velocity, frames)


# Motion-direction classes of the labelled set (1-based, as the original's UCF-101 lists): unit (x, y) steps.
DIRECTIONS = {1: (1, 0), 2: (-1, 0), 3: (0, 1), 4: (0, -1)}   # right, left, down, up


def direction_clip(seed, index, label, frames=32, size=128):
    """A clip whose object moves in direction ``label`` (DIRECTIONS) across the frame without bouncing."""
    rng = np.random.default_rng([seed, index, 1])
    scene = background(rng, size)
    colour, radius = _object(rng, size)
    square = rng.random() < 0.5
    step = np.array(DIRECTIONS[label], float)
    travel = size - 2.2 * radius                          # the whole way across, inside the frame
    across = rng.uniform(radius, size - radius)
    start = np.where(step != 0, np.where(step > 0, 1.1 * radius, size - 1.1 * radius), across)
    return render(scene, colour, radius, square, start, step * travel / frames, frames)


def labelled_dataset(directory, clips, frames=32, frame_height=128, seed=0):
    """A ``path class`` list of ``clips`` direction clips (classes cycling 1..4); returns the list path."""
    entries = []
    for i in range(clips):
        label = i % len(DIRECTIONS) + 1
        name = f"dir{i:05d}.jpg"
        write_strip(os.path.join(directory, name), direction_clip(seed, i, label, frames, frame_height))
        entries.append(f"{name} {label}")
    list_path = os.path.join(directory, LIST_NAME)
    write_list(list_path, entries)
    return list_path


def ensure_dataset(directory, clips=256, frames=32, frame_height=128, seed=0):
    """Write the dataset into ``directory`` unless it is already complete; return the list file path."""
    spec = {"version": VERSION, "clips": clips, "frames": frames, "frame_height": frame_height, "seed": seed}
    list_path = os.path.join(directory, LIST_NAME)
    spec_path = os.path.join(directory, "dataset.json")
    if os.path.exists(list_path) and os.path.exists(spec_path):
        with open(spec_path) as f:
            if json.load(f) == spec:
                return list_path
    names = [f"clip{i:05d}.jpg" for i in range(clips)]

    def write(i):
        write_strip(os.path.join(directory, names[i]), clip(seed, i, frames, frame_height))
    # OpenCV's drawing and encoding and numpy's larger operations run without the GIL: two threads
    # write the set in about half the time (a new user's first run waits for it)
    with concurrent.futures.ThreadPoolExecutor(GENERATION_THREADS) as pool:
        list(pool.map(write, range(clips)))
    write_list(list_path, names)          # the list and spec go last: their presence means "complete"
    write_text_atomic(spec_path, json.dumps(spec))
    return list_path


def default_directory(clips=256, frames=32, frame_height=128, seed=0):
    """Cache folder of the default dataset (``$TINYVIDEO_MX_CACHE`` or ~/.cache/tinyvideo-mx)."""
    root = os.environ.get("TINYVIDEO_MX_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "tinyvideo-mx")
    key = hashlib.sha1(json.dumps([VERSION, clips, frames, frame_height, seed]).encode()).hexdigest()[:10]
    return os.path.join(root, f"synthetic-{key}")
