"""Frame-to-frame motion: optical flow or feature matching, a RANSAC homography and the quality gate."""
import math

import cv2
import numpy as np

from tinyvideo_mx.errors import SettingError

from .video import reduced_grey, to_frame_coordinates


class Tracker:
    """Matches features between frames and estimates the homography that maps the current frame into
    the previous one, as the original did: keypoints and descriptors (SIFT), the ratio test, RANSAC.
    Features are found on a grey copy reduced to ``feature_size`` on the short side (0: the frame's own,
    as the original; SIFT's cost grows with the pixels) and their positions mapped back, so homographies
    are in the frame's pixels. The RANSAC threshold is in those pixels, as the original's 5 px were; the
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

    def describe(self, frame, index=0):
        """(keypoints as an (n, 2) array in the frame's pixel coordinates, descriptors); every frame alike
        (``index``, the frame's number, is the flow's business)."""
        grey, factors = reduced_grey(frame, self.config.feature_size)
        keypoints, descriptors = self.detector.detectAndCompute(grey, None)
        return to_frame_coordinates(np.float32([k.pt for k in keypoints]).reshape(-1, 2), factors), descriptors

    def homography(self, current, previous, frame_shape):
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
        return fit(pts_c[[m.queryIdx for m in good]], pts_p[[m.trainIdx for m in good]], frame_shape, cfg)


class FlowTracker:
    """The default: corners (Shi-Tomasi) found on a grey copy reduced to ``flow_size`` and followed into
    the next frame by pyramidal Lucas-Kanade optical flow, then RANSAC and the gate as for features.
    On real footage this leaves less residual motion than the original's full-resolution SIFT, at
    13-30x its frames/s on 480p-and-larger videos (bench/stabilize.py, docs/performance.md). Where the
    flow fails - motion beyond the pyramid's reach, too few corners - it is tried once more, guided
    (``flow_guides``: the coarse motion a few of the points agree on placing all of them), and where that fails
    too the pair of frames is matched by features (``Tracker``) instead, so what the flow cannot follow
    costs speed, not clips. ``guided`` counts the pairs the second try decided, ``fallbacks`` those matching
    decided."""

    def __init__(self, config):
        self.config = config
        self.matching = Tracker(config)
        self.guided = self.fallbacks = 0

    def describe(self, frame, index=0):
        """What the flow needs of frame number ``index``: its grey copy and, on every ``corner_every``-th
        frame, its corners (on the others the flow starts where the previous pair's flow ended:
        ``start_points``)."""
        grey, factors = reduced_grey(frame, self.config.flow_size)
        search = index % self.config.corner_every == 0
        corners = spread_corners(grey, self.config.flow_corners, self.config.flow_tiles) if search else None
        # features for the fallback are found only when a pair needs them
        return dict(frame=frame, grey=grey, corners=corners, factors=factors, features=None, followed=None)

    def start_points(self, view):
        """Where the flow out of ``view`` starts: its corners where they were searched; else the points the
        flow into it ended at (``follow`` keeps them when enough got there); else corners searched now (after
        a pair that matching decided, at a clip's first frame, where many points were lost)."""
        if view["corners"] is None:
            if view["followed"] is not None:
                return view["followed"]
            view["corners"] = spread_corners(view["grey"], self.config.flow_corners, self.config.flow_tiles)
        return view["corners"]

    def homography(self, current, previous, frame_shape):
        M, reason = self.follow(current, previous, frame_shape)
        if M is None and self.config.flow_guides:
            M = self.follow(current, previous, frame_shape, guided=True)[0]
            self.guided += M is not None
        if M is not None:
            return M, None
        self.fallbacks += 1
        for view in (current, previous):
            if view["features"] is None:
                view["features"] = self.matching.describe(view["frame"])
        M, fallback_reason = self.matching.homography(current["features"], previous["features"], frame_shape)
        # the matching decided: its reason first (report.json groups drops by it), the flow's after
        return (M, None) if M is not None else (None, f"{fallback_reason}; flow: {reason}")

    def follow(self, current, previous, frame_shape, guided=False):
        """The flow estimate: (M, None) or (None, reason). ``guided``: each point's coarse levels replaced by
        ``flow_guides`` points' (``guided_track``)."""
        cfg = self.config
        start = self.start_points(previous)
        if len(start) < cfg.min_inliers:
            return None, f"too few corners ({len(start)})"
        if guided:
            ended, found = guided_track(previous["grey"], current["grey"], start, cfg.flow_window,
                                        cfg.flow_coarse_window, cfg.flow_guides)
        else:
            ended, found = track(previous["grey"], current["grey"], start, cfg.flow_window, cfg.flow_coarse_window)
        if found.sum() < cfg.min_inliers:
            return None, f"too few corners followed ({int(found.sum())})"
        ended = ended[found]
        # Flow that lost its way (motion beyond the pyramid's reach) still yields a homography, but one
        # that few corners agree with: 5-31 % for camera jumps of 40-200 px at 640x480, against a median
        # of 92-100 % on the opencv-doc videos (1 % of their pairs below 49-83 %; the damaged stream's
        # broken frames down to 12 %, where matching then decides).
        M, reason = fit(to_frame_coordinates(ended, current["factors"]),
                        to_frame_coordinates(start[found], previous["factors"]), frame_shape, cfg, cfg.flow_agreement)
        if M is not None and len(ended) >= cfg.carry_min * len(start):
            current["followed"] = ended      # where the next pair's flow may start (start_points)
        return M, reason


FLOW_LEVELS = 3   # pyramid levels above the grey copy's own (calcOpticalFlowPyrLK's maxLevel)
FLOW_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01)


def track(previous, current, points, window, coarse_window=0):
    """Pyramidal Lucas-Kanade from grey image ``previous`` into ``current``: (where ``points`` ((n, 2) float32)
    ended, (n, 2); which were found, (n,) bool). ``window`` (pixels) on the finest level; ``coarse_window``
    on the coarser ones (0: ``window`` everywhere, one call). The coarse levels only bring each point near
    its place; the finest level alone decides where it ends. A point's cost grows with its window's area
    (400 points on a 400-px copy: 3.6 ms with 15 px on every level, 2.0 ms with 9 px on the coarse ones, one
    thread; docs/performance.md), so the coarse levels are followed first, on ``cv2.pyrDown`` copies - the
    images of OpenCV's own pyramid: with ``coarse_window == window`` the two calls end where one call does,
    bit for bit -, and the finest level starts from there."""
    if not coarse_window:
        ended, found, _ = cv2.calcOpticalFlowPyrLK(previous, current, points.reshape(-1, 1, 2), None,
                                                   winSize=(window, window), maxLevel=FLOW_LEVELS, criteria=FLOW_CRITERIA)
        return ended.reshape(-1, 2), found.ravel() == 1
    # A point the coarse levels lose goes on from where they left it, as in one call: only the finest level
    # says whether it was found.
    near, _ = coarse_levels(previous, current, points, coarse_window)
    return finest_level(previous, current, points, near, window)


def coarse_levels(previous, current, points, window):
    """Where ``points`` ((n, 2)) go on the pyramid's coarse levels (on ``cv2.pyrDown`` copies), in the grey
    copy's pixels as (n, 1, 2) float32, and which got there ((n,) bool)."""
    near, found, _ = cv2.calcOpticalFlowPyrLK(cv2.pyrDown(previous), cv2.pyrDown(current), points.reshape(-1, 1, 2) * 0.5,
                                              None, winSize=(window, window), maxLevel=FLOW_LEVELS - 1,
                                              criteria=FLOW_CRITERIA)
    return near * 2, found.ravel() == 1


def finest_level(previous, current, points, starts, window):
    """``track``'s (ended, found) for ``points`` followed on the grey copies' own level from ``starts`` ((n, 1, 2))."""
    ended, found, _ = cv2.calcOpticalFlowPyrLK(previous, current, points.reshape(-1, 1, 2), starts, winSize=(window, window),
                                               maxLevel=0, criteria=FLOW_CRITERIA, flags=cv2.OPTFLOW_USE_INITIAL_FLOW)
    return ended.reshape(-1, 2), found.ravel() == 1


GUIDE_RANSAC_PX = 2.0       # guided_track's inlier threshold for the guides' coarse motion, pixels of the grey copy
GUIDES_FOLLOWED_MIN = 12    # ... and the guides that must come through the coarse levels to give it


def guided_track(previous, current, points, window, coarse_window, guides):
    """``track`` for a pair the flow lost: only ``guides`` of the points (evenly picked; all if fewer) are
    followed through the coarse levels, the similarity (shift, rotation, scale) most of them agree on
    (RANSAC on pairs of points, so a few agreeing guides among many lost ones suffice) says where every
    point starts on the finest level, and that level alone decides where each ends, as in ``track``. Where
    points cannot each find their way on the coarse levels - a plain wall's few corners in a whip pan - their
    common motion still can. On the generated seed 4 (a plain wall, 50-px whip pans, an object a quarter of
    the frame wide) matching followed the object on six pairs measured alone, 60-90 px wrong at the frame's
    corners, where this finds the camera to 0.09-0.40 px; the video's true residual fell from 2.02 to 0.62 px,
    and videos whose flow never fails are untouched (docs/performance.md). Returns ``track``'s (ended,
    found); none found where the guides give no motion."""
    picked = points if len(points) <= guides else points[np.linspace(0, len(points) - 1, guides).astype(int)]
    near, followed = coarse_levels(previous, current, picked, coarse_window or window)
    M = None
    if followed.sum() >= GUIDES_FOLLOWED_MIN:
        M, _ = cv2.estimateAffinePartial2D(picked[followed], near.reshape(-1, 2)[followed], method=cv2.RANSAC,
                                           ransacReprojThreshold=GUIDE_RANSAC_PX)
    if M is None:
        return points.copy(), np.zeros(len(points), bool)
    starts = cv2.transform(points.reshape(-1, 1, 2), M).astype(np.float32)
    return finest_level(previous, current, points, starts, window)


def spread_corners(grey, count, tiles):
    """Up to ``count`` Shi-Tomasi corners of ``grey`` ((n, 2) float32), at most count / tiles**2 in each
    cell of a ``tiles`` x ``tiles`` grid, the strongest first. Without the cap a strongly textured object
    - a hand, a held box - holds most of the corners and RANSAC follows it instead of the camera: on
    generated videos with an object 25-40 % of the frame wide, the residual against the true camera path
    fell 1.4-5.2x on eight of ten (bench/stabilize.py --generated, docs/performance.md). Corners are only
    kept as strong as the whole frame allows (quality 0.01 of its strongest), so a flat cell - a plain
    wall, a letterbox bar - is not filled with noise: forcing corners there made real footage shakier."""
    found = cv2.goodFeaturesToTrack(grey, count * tiles, 0.01, 7)   # strongest first
    if found is None:
        return np.zeros((0, 2), np.float32)
    found = found.reshape(-1, 2)
    if tiles <= 1:
        return found[:count]
    h, w = grey.shape[:2]
    cell = (np.minimum(found[:, 1] * tiles // h, tiles - 1) * tiles
            + np.minimum(found[:, 0] * tiles // w, tiles - 1)).astype(np.int64)
    # rank of each corner among the stronger corners of its cell: keep the first count / tiles**2
    order = np.argsort(cell, kind="stable")
    starts = np.searchsorted(cell[order], np.arange(tiles * tiles))
    rank = np.empty(len(found), np.int64)
    rank[order] = np.arange(len(found)) - np.repeat(starts, np.diff(np.append(starts, len(found))))
    return found[rank < max(1, count // (tiles * tiles))]


def make_tracker(config):
    """The motion estimator ``config.motion`` names: "flow" (the default) or "features" (the original's)."""
    if config.motion == "flow":
        return FlowTracker(config)
    if config.motion == "features":
        return Tracker(config)
    raise SettingError(f"motion must be 'flow' or 'features', got {config.motion!r}")


RANSAC_CONFIDENCE = 0.995   # cv2.findHomography's own default


def ransac_samples(agreement, confidence=RANSAC_CONFIDENCE):
    """How many random four-point samples RANSAC needs to draw one of ``agreement`` of the points at least
    with probability ``confidence`` (82.1 for a half: 83)."""
    return max(1, math.ceil(math.log(1 - confidence) / math.log(1 - agreement ** 4)))


def fit(src, dst, frame_shape, cfg, agreement=0.0):
    """RANSAC homography mapping points ``src`` onto ``dst`` (frame pixels), then the gate:
    (M, None) or (None, reason). ``agreement``: the fraction of the points that must be inliers.

    With an ``agreement``, RANSAC draws at most ``ransac_samples(agreement)`` samples. OpenCV stops as soon as
    the best homography so far says that enough were drawn for it (at most 82 for one that half the points
    fit), so a pair with the agreement asked for ends the same; without the cap a pair that few points fit
    - the flow lost on a plain wall or in a whip pan - drew the full 2,000 samples, 16-18 ms a fit on average, only to
    fail the agreement test: on generated seed 4 eight such fits took 141 of the 171 ms its RANSAC took
    (docs/performance.md)."""
    if agreement > 0:
        M, inliers = cv2.findHomography(src, dst, cv2.RANSAC, cfg.ransac_threshold,
                                        maxIters=ransac_samples(agreement), confidence=RANSAC_CONFIDENCE)
    else:
        M, inliers = cv2.findHomography(src, dst, cv2.RANSAC, cfg.ransac_threshold)
    if M is None:
        return None, "no homography found"
    if inliers.sum() < agreement * len(src):
        return None, f"too few points agree ({int(inliers.sum())} of {len(src)})"
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
