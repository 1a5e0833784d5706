"""Files people open: GIF, MP4 and PNG writers, and the grid layout of generate.lua.

Videos here are float arrays (3, T, H, W) in [-1, 1] (masks: (1, T, H, W) in [0, 1]); writers take
uint8 frames (T, H, W, 3). Every file is written atomically.
"""
import os

import imageio.v2 as imageio
import imageio_ffmpeg
import numpy as np

from ..fsutil import atomic_path

DEFAULT_FPS = 25   # 32 frames ~ "a little over a second", as the paper describes its clips


def to_frames(video, value_range=(-1.0, 1.0), normalize=None):
    """(C, T, H, W) float -> uint8 (T, H, W, 3); 1-channel inputs become grey. ``normalize='frame'``
    stretches each frame to its own min..max, like generate.lua's display (off by default)."""
    video = np.asarray(video, np.float32)
    if video.shape[0] == 1:
        video = np.repeat(video, 3, axis=0)
    frames = video.transpose(1, 2, 3, 0)
    if normalize == "frame":
        low = frames.min(axis=(1, 2, 3), keepdims=True)
        high = frames.max(axis=(1, 2, 3), keepdims=True)
        frames = (frames - low) / np.maximum(high - low, 1e-8)
    else:
        low, high = value_range
        frames = (frames - low) / (high - low)
    return np.clip(frames * 255.0 + 0.5, 0, 255).astype(np.uint8)


def grid(frames_list, columns=6, padding=1):
    """Tile same-sized uint8 videos (T, H, W, 3) into one video (rows of ``columns``), black padding."""
    n = len(frames_list)
    t, h, w, c = frames_list[0].shape
    columns = min(columns, n)
    rows = (n + columns - 1) // columns
    out = np.zeros((t, rows * (h + padding) + padding, columns * (w + padding) + padding, c), np.uint8)
    for i, frames in enumerate(frames_list):
        r, col = divmod(i, columns)
        y, x = padding + r * (h + padding), padding + col * (w + padding)
        out[:, y:y + h, x:x + w] = frames
    return out


def upscale(frames, factor):
    """Nearest-neighbour enlargement (64-px clips are tiny on screen)."""
    if factor == 1:
        return frames
    return frames.repeat(factor, axis=-3).repeat(factor, axis=-2)


def write_gif(path, frames, fps=DEFAULT_FPS):
    with atomic_path(path) as tmp:
        imageio.mimsave(tmp, list(frames), format="GIF", duration=1000.0 / fps, loop=0)


def write_mp4(path, frames, fps=DEFAULT_FPS):
    """H.264 MP4 (yuv420p, playable everywhere); odd sizes are padded by one black row/column."""
    frames = np.asarray(frames)
    t, h, w, _ = frames.shape
    if h % 2 or w % 2:
        frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)))
        h, w = frames.shape[1:3]
    with atomic_path(path) as tmp:
        writer = imageio_ffmpeg.write_frames(tmp, (w, h), fps=fps, codec="libx264", pix_fmt_out="yuv420p",
                                             macro_block_size=1, output_params=["-f", "mp4"],
                                             ffmpeg_log_level="error")
        writer.send(None)
        for frame in frames:
            writer.send(np.ascontiguousarray(frame))
        writer.close()


def write_png(path, image):
    with atomic_path(path) as tmp:
        imageio.imwrite(tmp, np.asarray(image), format="PNG")


def read_gif(path, fps=DEFAULT_FPS):
    """GIF frames as uint8 (T, H, W, 3). Pillow stores identical consecutive frames once with a longer
    duration (it plays the same); the frames are expanded back using ``fps``."""
    from PIL import Image, ImageSequence
    frames = []
    with Image.open(path) as gif:
        for frame in ImageSequence.Iterator(gif):
            repeat = max(1, int(round(frame.info.get("duration", 1000.0 / fps) * fps / 1000.0)))
            frames += [np.asarray(frame.convert("RGB"))] * repeat
    return np.stack(frames)


def read_video(path, fps=DEFAULT_FPS):
    """All frames of a video file as uint8 (T, H, W, 3) RGB (tests and tools use it to check outputs)."""
    if path.lower().endswith(".gif"):
        return read_gif(path, fps)
    reader = imageio_ffmpeg.read_frames(path)
    meta = reader.__next__()
    w, h = meta["size"]
    return np.stack([np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in reader])


def write_video(path_without_extension, frames, fps=DEFAULT_FPS, formats=("gif", "mp4")):
    """Write the same clip as every format in ``formats``; return the paths."""
    paths = []
    os.makedirs(os.path.dirname(os.path.abspath(path_without_extension)), exist_ok=True)
    for fmt in formats:
        path = f"{path_without_extension}.{fmt}"
        {"gif": write_gif, "mp4": write_mp4}[fmt](path, frames, fps)
        paths.append(path)
    return paths
