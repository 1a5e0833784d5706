"""Residual motion of a stabilised clip, in output pixels per frame step.

``residual_motion``: the mean translation between consecutive frames by phase correlation (sub-pixel) -
everything that moves counts, a walking person or a hand as much as the camera. ``dominant_motion``:
the motion of the frame's dominant surface only - corners spread over the frame, followed by optical
flow, one RANSAC similarity - so an object moving on its own counts little; the quality gate of the
written clips (``StabilizeConfig.max_residual``) uses it."""
import threading

import cv2
import numpy as np

from .homography import spread_corners


def residual_motion(frames_rgb):
    """Mean |shift| in px between consecutive frames of uint8 (T, H, W, 3) frames."""
    grey = [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY).astype(np.float32) for f in frames_rgb]
    window = cv2.createHanningWindow(grey[0].shape[::-1], cv2.CV_32F)
    shifts = [np.hypot(*cv2.phaseCorrelate(a, b, window)[0]) for a, b in zip(grey, grey[1:])]
    return float(np.mean(shifts)) if shifts else 0.0


def dominant_motion(frames_rgb, corners=100, tiles=4, grid=8, threads=1):
    """Mean displacement in px, per frame step, of a ``grid`` x ``grid`` of points under the similarity
    (shift, rotation, scale) that most of ``corners`` corners (at most corners / tiles**2 per cell)
    follow between consecutive frames of uint8 (T, H, W, 3) frames. Steps without enough corners to
    judge (a blank frame) are left out; a clip with none measures 0. ``threads``: the steps are split
    into that many runs of consecutive pairs, each on a thread (OpenCV's calls release the GIL); every
    step is computed alone, so the measure is the same to the last bit."""
    grey = [grey_of_rgb(f) for f in frames_rgb]
    h, w = grey[0].shape
    points = np.stack(np.meshgrid(np.linspace(0, w - 1, grid), np.linspace(0, h - 1, grid)), -1)
    points = points.reshape(-1, 1, 2).astype(np.float32)
    pairs = list(zip(grey, grey[1:]))
    runs = np.array_split(np.arange(len(pairs)), max(1, min(threads, len(pairs))))
    results = [None] * len(runs)      # per run: its steps, or the error that stopped it

    def measure(n):
        try:
            results[n] = [step for step in (_step(*pairs[i], points, corners, tiles) for i in runs[n])
                          if step is not None]
        except Exception as error:    # noqa: BLE001 - raised below, in the caller's thread
            results[n] = error
    helpers = [threading.Thread(target=measure, args=(n,), name="dominant-motion") for n in range(1, len(runs))]
    for helper in helpers:
        helper.start()
    measure(0)
    for helper in helpers:
        helper.join()
    for result in results:
        if isinstance(result, Exception):
            raise result
    steps = [step for run in results for step in run]
    return float(np.mean(steps)) if steps else 0.0


def grey_of_rgb(frame):
    """The grey copy of a uint8 RGB frame (H, W, 3). The stabiliser's clips are BGR frames seen through
    ``[..., ::-1]``: converted as the BGR they are, the same grey to the bit, without copying each one first."""
    if not frame.flags.c_contiguous and frame[..., ::-1].flags.c_contiguous:
        return cv2.cvtColor(frame[..., ::-1], cv2.COLOR_BGR2GRAY)
    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)


def _step(a, b, points, corners, tiles):
    """``dominant_motion``'s displacement from grey frame ``a`` to ``b``, or None when too few corners judge."""
    start = spread_corners(a, corners, tiles)
    if len(start) < 8:
        return None
    end, found, _ = cv2.calcOpticalFlowPyrLK(a, b, start.reshape(-1, 1, 2), None, winSize=(15, 15), maxLevel=2)
    found = found.ravel() == 1
    if found.sum() < 8:
        return None
    M, _ = cv2.estimateAffinePartial2D(start[found], end.reshape(-1, 2)[found], method=cv2.RANSAC,
                                       ransacReprojThreshold=1.0)
    if M is None:
        return None
    return float(np.hypot(*(cv2.transform(points, M) - points).reshape(-1, 2).T).mean())
