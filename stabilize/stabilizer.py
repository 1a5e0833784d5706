"""The per-video algorithm of stabilize_videos_many.py (``compute``, lines 90-211):

for each clip (up to ``max_clips``): the first frame is the reference; every following frame is
matched to the previous one, the homographies are chained (``bigM = bigM @ M``) so each frame is
warped into the reference's coordinates, and pixels the warped frame does not cover keep the previous
output (an eroded coverage mask blends them). A clip ends at ``max_frames`` frames, at the end of the
stream, when the warp leaves the frame (coverage empty), or - beyond the original - at a scene cut;
it is dropped if any frame failed to match (or failed the quality gate) or if it is shorter than
``min_frames``. Output frames are ``video_size`` squares (short side resized, centre crop).
"""
import cv2
import numpy as np

from .cuts import is_cut, signature
from .homography import Tracker
from .video import resize_and_crop, scaled_frames


def clips(path, config, notes=None):
    """Yield ("clip", (first frame, frames uint8 RGB (T, S, S, 3))) for kept clips and ("drop", reason)
    for dropped ones; the first frame counts decoded frames from 0. Raises VideoError for unreadable
    files."""
    tracker = Tracker(config)
    # frames at the working resolution: short side feature_size (0: the video's own, as the original,
    # which matched and warped full-resolution frames; the output is 128 px, so 192 changes little but
    # the cost - bench/stabilize.py)
    stream = enumerate(scaled_frames(path, config.feature_size, config.fps, notes))
    for _ in range(config.skip_frames):
        if next(stream, None) is None:
            return
    pending = next(stream, None)          # (index, (frame, scale)): the first frame of the next clip
    for _ in range(config.max_clips):
        if pending is None:
            return
        (start, (frame, scale)), pending = pending, None
        h, w = frame.shape[:2]
        white = np.full((h, w), 255, np.uint8)
        kernel = np.ones((config.erode, config.erode), np.uint8)
        output = [resize_and_crop(frame, config.video_size).astype(np.float32)]
        previous = tracker.describe(frame)
        previous_look = signature(frame) if config.scene_cuts else None
        chain = np.eye(3)
        failure = cut_frame = None
        for index, (frame, scale) in stream:
            if config.scene_cuts:
                look = signature(frame)
                if is_cut(previous_look, look, config):
                    cut_frame = (index, (frame, scale))   # the cut frame starts the next clip
                    break
                previous_look = look
            current = tracker.describe(frame)
            M, reason = tracker.homography(current, previous, frame.shape, scale)
            if M is None:
                failure = reason
                break
            previous = current
            chain = chain @ M
            coverage = cv2.erode(cv2.warpPerspective(white, chain, (w, h)), kernel, iterations=1)
            mask = resize_and_crop(coverage, config.video_size).astype(np.float32)[..., None] / 255.0
            if not mask.any():
                break                                  # the warp left the frame: the clip ends here
            warped = resize_and_crop(cv2.warpPerspective(frame, chain, (w, h)), config.video_size).astype(np.float32)
            output.append(output[-1] * (1 - mask) + warped * mask)
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
