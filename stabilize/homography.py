"""Frame-to-frame motion: features, ratio-test matching, RANSAC homography and the quality gate."""
import cv2
import numpy as np
from tinyvideo_mx.errors import SettingError


class Tracker:
    """Detects features on a grey frame and estimates the homography that maps the current frame into
    the previous one. ``scale`` is the working resolution relative to the video's own (1 in the
    faithful mode): the RANSAC threshold is in the video's pixels, as the original's 5 px were; the
    gate's reprojection limit is in pixels of the written clips, so it means the same at any size."""

    def __init__(self, config):
        self.config = config
        if config.features == "sift":
            self.detector = cv2.SIFT_create(nfeatures=config.max_features)
            norm = cv2.NORM_L2
        elif config.features == "orb":
            self.detector = cv2.ORB_create(nfeatures=config.max_features or 1500)
            norm = cv2.NORM_HAMMING
        else:
            raise SettingError(f"features must be 'sift' or 'orb', got {config.features!r}")
        if config.matcher == "flann":
            # The original's call: FLANN_INDEX_KDTREE = 0, trees=5, checks=50. For OpenCV, index type 0
            # is *linear* (exact) search - KD-trees are 1 - so the original matched exactly; so do we.
            index = (dict(algorithm=0, trees=5) if norm == cv2.NORM_L2
                     else dict(algorithm=6, table_number=6, key_size=12, multi_probe_level=1))
            self.matcher = cv2.FlannBasedMatcher(index, dict(checks=50))
        elif config.matcher == "bf":
            self.matcher = cv2.BFMatcher(norm)
        else:
            raise SettingError(f"matcher must be 'bf' or 'flann', got {config.matcher!r}")

    def describe(self, frame):
        """(keypoints as an (n, 2) array, descriptors)."""
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        keypoints, descriptors = self.detector.detectAndCompute(grey, None)
        return np.float32([k.pt for k in keypoints]).reshape(-1, 2), descriptors

    def homography(self, current, previous, frame_shape, scale=1.0):
        """(M mapping current -> previous, None) or (None, reason)."""
        pts_c, des_c = current
        pts_p, des_p = previous
        cfg = self.config
        if des_c is None or des_p is None or len(pts_c) < 2 or len(pts_p) < 2:
            return None, "too few features"
        if des_c.dtype != np.float32 and cfg.matcher == "flann" and cfg.features == "sift":
            des_c, des_p = des_c.astype(np.float32), des_p.astype(np.float32)
        pairs = self.matcher.knnMatch(des_c, des_p, k=2)
        good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < cfg.ratio * p[1].distance]
        if len(good) < cfg.min_matches:
            return None, f"too few matches ({len(good)} < {cfg.min_matches})"
        src = pts_c[[m.queryIdx for m in good]]
        dst = pts_p[[m.trainIdx for m in good]]
        M, inliers = cv2.findHomography(src, dst, cv2.RANSAC, cfg.ransac_threshold * scale)
        if M is None:
            return None, "no homography found"
        if cfg.quality_gate:
            reason = gate(M, src, dst, inliers, frame_shape, cfg)
            if reason:
                return None, reason
        return M, None


def gate(M, src, dst, inliers, frame_shape, cfg):
    """Why a homography between consecutive frames is not trusted, or None."""
    inliers = inliers.ravel().astype(bool)
    if inliers.sum() < cfg.min_inliers:
        return f"too few inliers ({int(inliers.sum())} < {cfg.min_inliers})"
    projected = cv2.perspectiveTransform(src[inliers].reshape(-1, 1, 2), M).reshape(-1, 2)
    # in pixels of the clips written (video_size squares), whatever resolution the features came from
    rms = float(np.sqrt(((projected - dst[inliers]) ** 2).sum(axis=1).mean())) * cfg.video_size / min(frame_shape[:2])
    if rms > cfg.max_reprojection:
        return f"reprojection error ({rms:.2f} output px > {cfg.max_reprojection})"
    M = M / M[2, 2]
    s1, s2 = np.linalg.svd(M[:2, :2], compute_uv=False)
    if abs(np.sqrt(s1 * s2) - 1) > cfg.max_scale_change:
        return f"scale change ({np.sqrt(s1 * s2):.3f} beyond 1 +/- {cfg.max_scale_change})"
    if s1 / max(s2, 1e-9) - 1 > cfg.max_shear:
        return f"shear ({s1 / max(s2, 1e-9) - 1:.3f} > {cfg.max_shear})"
    h, w = frame_shape[:2]
    # 1 + h31 x + h32 y is the relative scale at (x, y): its spread over the frame measures perspective.
    perspective = abs(M[2, 0]) * w + abs(M[2, 1]) * h
    if perspective > cfg.max_perspective:
        return f"perspective ({perspective:.3f} > {cfg.max_perspective})"
    return None
