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

from .homography import Tracker, histogram, is_cut
from .video import frames as read_frames, resize_and_crop


def working_frames(frames, work_size):
    """(frame, scale) at the working resolution: short side ``work_size`` (0: the video's own, as the
    original, which warped and matched full-resolution frames). The output is 128 px, so working at
    192 px changes little but the cost (bench/stabilize.py)."""
    for frame in frames:
        h, w = frame.shape[:2]
        if work_size and min(h, w) > work_size:
            scale = work_size / min(h, w)
            frame = cv2.resize(frame, (int(round(w * scale)), int(round(h * scale))), interpolation=cv2.INTER_AREA)
            yield frame, scale
        else:
            yield frame, 1.0


def clips(path, config, notes=None):
    """Yield ("clip", frames uint8 RGB (T, S, S, 3)) for kept clips and ("drop", reason) for dropped
    ones. Raises VideoError for unreadable files."""
    tracker = Tracker(config)
    stream = working_frames(read_frames(path, config.fps, notes), config.feature_size)
    for _ in range(config.skip_frames):
        if next(stream, None) is None:
            return
    pending = next(stream, None)          # the first frame of the next clip
    for _ in range(config.max_clips):
        if pending is None:
            return
        (frame, scale), pending = pending, None
        h, w = frame.shape[:2]
        white = np.full((h, w), 255, np.uint8)
        kernel = np.ones((config.erode, config.erode), np.uint8)
        output = [resize_and_crop(frame, config.video_size).astype(np.float32)]
        previous = tracker.describe(frame)
        previous_hist = histogram(frame) if config.scene_cuts else None
        chain = np.eye(3)
        failure = cut_frame = None
        for frame, scale in stream:
            if config.scene_cuts:
                hist = histogram(frame)
                if is_cut(previous_hist, hist, config.cut_threshold):
                    cut_frame = (frame, scale)         # the cut frame starts the next clip
                    break
                previous_hist = hist
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
            yield "clip", np.clip(np.stack(output) + 0.5, 0, 255).astype(np.uint8)[..., ::-1]
        # The next clip starts at the cut frame, or at the next unread frame (None: end of stream).
        pending = cut_frame if cut_frame is not None else next(stream, None)
