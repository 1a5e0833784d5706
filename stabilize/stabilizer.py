"""The per-video algorithm of stabilize_videos_many.py (``compute``, lines 90-211):

for each clip (up to ``max_clips``): the first frame is the reference; every following frame is
matched to the previous one, the homographies are chained (``bigM = bigM @ M``) so each frame is
warped into the reference's coordinates, and pixels the warped frame does not cover keep the previous
output (an eroded coverage mask blends them). A clip ends at ``max_frames`` frames, at the end of the
stream, when the warp leaves the frame (coverage empty), or - beyond the original - at a scene cut;
it is dropped if any frame failed to match (or failed the quality gate) or if it is shorter than
``min_frames``. Output frames are ``video_size`` squares (short side resized, centre crop).

Every mode writes its pixels as the original did - full-resolution frames warped, then resized - so
modes differ only in the homographies (homography.py): residual motion compares like with like.
"""
import cv2
import numpy as np

from .cuts import is_cut, signature
from .homography import make_tracker
from .video import frames, resize_and_crop


def clips(path, config, notes=None):
    """Yield ("clip", (first frame, frames uint8 RGB (T, S, S, 3))) for kept clips and ("drop", reason)
    for dropped ones; the first frame counts decoded frames from 0. Raises VideoError for unreadable
    files."""
    tracker = make_tracker(config)
    kernel = np.ones((config.erode, config.erode), np.uint8)
    stream = enumerate(frames(path, config.fps, notes))
    for _ in range(config.skip_frames):
        if next(stream, None) is None:
            return
    pending = next(stream, None)          # (index, frame): the first frame of the next clip
    for _ in range(config.max_clips):
        if pending is None:
            return
        (start, frame), pending = pending, None
        h, w = frame.shape[:2]
        output = [resize_and_crop(frame, config.video_size).astype(np.float32)]
        previous = tracker.describe(frame)
        previous_look = signature(frame) if config.scene_cuts else None
        chain = np.eye(3)
        failure = cut_frame = None
        for index, frame in stream:
            if config.scene_cuts:
                look = signature(frame)
                if is_cut(previous_look, look, config):
                    cut_frame = (index, frame)            # the cut frame starts the next clip
                    break
                previous_look = look
            current = tracker.describe(frame)
            M, reason = tracker.homography(current, previous, frame.shape)
            if M is None:
                failure = reason
                break
            previous = current
            chain = chain @ M
            # The frame and its coverage (the original warped a white image for it) in one warp: an
            # opaque alpha channel comes out as exactly that coverage, and the pass costs about one.
            layers = cv2.warpPerspective(cv2.cvtColor(frame, cv2.COLOR_BGR2BGRA), chain, (w, h))
            layers[..., 3] = cv2.erode(cv2.extractChannel(layers, 3), kernel, iterations=1)
            layers = resize_and_crop(layers, config.video_size).astype(np.float32)
            mask = layers[..., 3:] / 255.0
            if not mask.any():
                break                                  # the warp left the frame: the clip ends here
            output.append(output[-1] * (1 - mask) + layers[..., :3] * mask)
            if len(output) >= config.max_frames:
                break
        if failure is not None:
            yield "drop", f"matching failed: {failure}"
        elif len(output) < config.min_frames:
            yield "drop", f"too short ({len(output)} < {config.min_frames} frames)"
        else:
            yield "clip", (start, np.clip(np.stack(output) + 0.5, 0, 255).astype(np.uint8)[..., ::-1])
        # The next clip starts at the cut frame, or at the next unread frame (None: end of stream).
        pending = cut_frame if cut_frame is not None else next(stream, None)
