"""A compact Python 3 port of the original ``extra/stabilize_videos_many.py`` (``process_im`` and
``compute``), written from the original's lines as docs/original.md §7 gives them, and kept apart from the
package on purpose: tests compare ``stabilize --faithful`` against it.

What the original does, as ported here: decode every frame at the native rate (ffmpeg, rgb24, flipped to
BGR); skip 2 frames; up to 100 clips, each starting at the next unread frame; SIFT on full-resolution
frames; FLANN with index type 0 (OpenCV's *linear*, exact search, although the code calls it KD-tree),
k = 2, Lowe ratio 0.7; >= 10 good matches -> RANSAC homography (5 px), otherwise identity and the clip
fails; chain, warp, blend through an eroded coverage mask; a clip ends after 34 frames, at the end of the
stream, when the coverage is empty, or on failure; kept if nothing failed and it has >= 16 frames.
Resizing truncates (``int(h * scale)``), then crops the centre from ``h // 2 - 64``.
"""
import cv2
import imageio_ffmpeg
import numpy as np

MIN_MATCH_COUNT, VIDEO_SIZE, CROP_SIZE, MAX_FRAMES, MIN_FRAMES, FRAMES_DELAY = 10, 128, 128, 33, 16, 2


def read_frames(path):
    reader = imageio_ffmpeg.read_frames(path, pix_fmt="rgb24")
    meta = next(reader)
    w, h = meta["size"]
    for raw in reader:
        yield np.frombuffer(raw, np.uint8).reshape(h, w, 3)[:, :, ::-1].copy()


def process_im(im):
    h, w = im.shape[:2]
    scale = float(VIDEO_SIZE) / min(h, w)
    im = cv2.resize(im, (int(w * scale), int(h * scale)))
    h, w = im.shape[:2]
    return im[h // 2 - CROP_SIZE // 2:h // 2 + CROP_SIZE // 2, w // 2 - CROP_SIZE // 2:w // 2 + CROP_SIZE // 2]


def compute(path):
    """[(first frame index, frames uint8 RGB (T, 128, 128, 3))] of the clips the original keeps; the
    index counts decoded frames from 0 (the two skipped frames included)."""
    sift = cv2.SIFT_create()
    flann = cv2.FlannBasedMatcher(dict(algorithm=0, trees=5), dict(checks=50))
    frames = enumerate(read_frames(path))
    for _ in range(FRAMES_DELAY):
        next(frames, None)
    kept = []
    for _ in range(100):
        item = next(frames, None)
        if item is None:
            break
        start, frame = item
        movie = [process_im(frame).astype(np.float64)]
        kp_prev, des_prev = sift.detectAndCompute(frame, None)
        big_m = np.eye(3)
        failed = False
        for _, frame in frames:
            kp, des = sift.detectAndCompute(frame, None)
            M = np.eye(3)
            if des is None or des_prev is None or len(kp) < 2 or len(kp_prev) < 2:
                failed = True
            else:
                good = [m for m, n in (p for p in flann.knnMatch(des, des_prev, k=2) if len(p) == 2)
                        if m.distance < 0.7 * n.distance]
                if len(good) >= MIN_MATCH_COUNT:
                    src = np.float32([kp[m.queryIdx].pt for m in good]).reshape(-1, 1, 2)
                    dst = np.float32([kp_prev[m.trainIdx].pt for m in good]).reshape(-1, 1, 2)
                    M, _ = cv2.findHomography(src, dst, cv2.RANSAC, 5.0)
                else:
                    failed = True
            if failed:
                break
            big_m = big_m.dot(M)
            h, w = frame.shape[:2]
            white = cv2.warpPerspective(np.full((h, w), 255, np.uint8), big_m, (w, h))
            mask = process_im(cv2.erode(white, np.ones((5, 5), np.uint8), iterations=1)).astype(np.float64)[..., None] / 255
            if mask.sum() == 0:
                break
            warped = process_im(cv2.warpPerspective(frame, big_m, (w, h))).astype(np.float64)
            movie.append(movie[-1] * (1 - mask) + warped * mask)
            kp_prev, des_prev = kp, des
            if len(movie) > MAX_FRAMES:
                break
        if not failed and len(movie) >= MIN_FRAMES:
            kept.append((start, np.clip(np.stack(movie) + 0.5, 0, 255).astype(np.uint8)[..., ::-1]))
    return kept
