"""Hard scene cuts between consecutive frames.

A cut changes both the colours and the layout of the picture at once. Either alone is not enough on real
footage: a trailer's cuts move the HSV histogram by a Bhattacharyya distance of 0.31, but a
hand-held clip whose frames stutter (opencv-doc's tree.avi: duplicated frames, then a jump as a hand
passes) moves it by up to 0.32 within one shot; the layout - mean absolute difference of 32x24 grey
thumbnails, 0-255 - changes by 34-43 at those cuts, 60-135 between different videos, and at most 17 in
the stutter (3.5 within the trailer's shots, 3.1 in a static-camera street scene). A cut is declared
when both exceed their thresholds (StabilizeConfig.cut_threshold = 0.2, cut_change = 25), which
separates every case above by a margin of at least 1.3x on each test - or when the colours alone change
by more than three times their threshold (two differently tinted scenes of similar layout: 0.75 and 20).
"""
import cv2
import numpy as np

THUMBNAIL = (32, 24)
SAMPLED = 128          # the short side signatures are taken at (at least; every k-th pixel)


def signature(frame):
    """(normalised 32x32 hue-saturation histogram, 32x24 grey thumbnail) of a BGR frame, taken from
    every k-th pixel (short side 128-255): the same statistics as the whole frame's, at a twentieth of
    the cost at 720p."""
    step = max(1, min(frame.shape[:2]) // SAMPLED)
    if step > 1:
        frame = cv2.resize(frame, (frame.shape[1] // step, frame.shape[0] // step), interpolation=cv2.INTER_NEAREST)
    hsv = cv2.cvtColor(frame, cv2.COLOR_BGR2HSV)
    hist = cv2.calcHist([hsv], [0, 1], None, [32, 32], [0, 180, 0, 256])
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    thumb = cv2.resize(grey, THUMBNAIL, interpolation=cv2.INTER_AREA).astype(np.float32)
    return cv2.normalize(hist, hist).flatten(), thumb


def is_cut(previous, current, config):
    """True when the step from signature ``previous`` to ``current`` is a hard cut."""
    colours = cv2.compareHist(previous[0], current[0], cv2.HISTCMP_BHATTACHARYYA)
    layout = float(np.abs(previous[1] - current[1]).mean())
    return colours > config.cut_threshold and (layout > config.cut_change or colours > 3 * config.cut_threshold)
