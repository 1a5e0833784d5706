"""Residual motion of a stabilised clip: the mean translation between consecutive frames, measured
by phase correlation (sub-pixel), in output pixels."""
import cv2
import numpy as np


def residual_motion(frames_rgb):
    """Mean |shift| in px between consecutive frames of uint8 (T, H, W, 3) frames."""
    grey = [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY).astype(np.float32) for f in frames_rgb]
    window = cv2.createHanningWindow(grey[0].shape[::-1], cv2.CV_32F)
    shifts = [np.hypot(*cv2.phaseCorrelate(a, b, window)[0]) for a, b in zip(grey, grey[1:])]
    return float(np.mean(shifts)) if shifts else 0.0
