"""Residual motion of a stabilised clip, in output pixels per frame step.

``residual_motion``: the mean translation between consecutive frames by phase correlation (sub-pixel) -
everything that moves counts, a walking person or a hand as much as the camera. ``dominant_motion``:
the motion of the frame's dominant surface only - corners spread over the frame, followed by optical
flow, one RANSAC similarity - so an object moving on its own counts little; the quality gate of the
written clips (``StabilizeConfig.max_residual``) uses it."""
import cv2
import numpy as np

from .homography import spread_corners


def residual_motion(frames_rgb):
    """Mean |shift| in px between consecutive frames of uint8 (T, H, W, 3) frames."""
    grey = [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY).astype(np.float32) for f in frames_rgb]
    window = cv2.createHanningWindow(grey[0].shape[::-1], cv2.CV_32F)
    shifts = [np.hypot(*cv2.phaseCorrelate(a, b, window)[0]) for a, b in zip(grey, grey[1:])]
    return float(np.mean(shifts)) if shifts else 0.0


def dominant_motion(frames_rgb, corners=100, tiles=4, grid=8):
    """Mean displacement in px, per frame step, of a ``grid`` x ``grid`` of points under the similarity
    (shift, rotation, scale) that most of ``corners`` corners (at most corners / tiles**2 per cell)
    follow between consecutive frames of uint8 (T, H, W, 3) frames. Steps without enough corners to
    judge (a blank frame) are left out; a clip with none measures 0."""
    grey = [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in frames_rgb]
    h, w = grey[0].shape
    points = np.stack(np.meshgrid(np.linspace(0, w - 1, grid), np.linspace(0, h - 1, grid)), -1)
    points = points.reshape(-1, 1, 2).astype(np.float32)
    steps = []
    for a, b in zip(grey, grey[1:]):
        start = spread_corners(a, corners, tiles)
        if len(start) < 8:
            continue
        end, found, _ = cv2.calcOpticalFlowPyrLK(a, b, start.reshape(-1, 1, 2), None, winSize=(15, 15), maxLevel=2)
        found = found.ravel() == 1
        if found.sum() < 8:
            continue
        M, _ = cv2.estimateAffinePartial2D(start[found], end.reshape(-1, 2)[found], method=cv2.RANSAC,
                                           ransacReprojThreshold=1.0)
        if M is not None:
            steps.append(float(np.hypot(*(cv2.transform(points, M) - points).reshape(-1, 2).T).mean()))
    return float(np.mean(steps)) if steps else 0.0
