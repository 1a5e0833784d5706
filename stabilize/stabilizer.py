"""The per-video algorithm of stabilize_videos_many.py (``compute``, lines 90-211):

for each clip (up to ``max_clips``): the first frame is the reference; every following frame is
matched to the previous one, the homographies are chained (``bigM = bigM @ M``) so each frame is
warped into the reference's coordinates, and pixels the warped frame does not cover keep the previous
output (an eroded coverage mask blends them). A clip ends at ``max_frames`` frames, at the end of the
stream, when the warp leaves the frame (coverage empty), or - beyond the original - at a scene cut;
it is dropped if it is shorter than ``min_frames``, and the original also dropped it if any frame failed to
match; the default ends it there instead, before the frame that failed (``keep_before_unmatched``: every
frame kept was linked to its predecessor), and that frame starts the next clip (``restart_at_unmatched``;
the original skipped it). Beyond the original, a clip whose written frames still move - the dominant motion between
them above ``max_residual`` output px per frame (metrics.dominant_motion) - is dropped with that reason.
Output frames are ``video_size`` squares (short side resized, centre crop).

The original warped each full-resolution frame, then resized it; the default warps a frame whose short
side is more than twice the output's straight into the output square (``warped``; ``warp_full_frame``
restores the original's way): the same positions sampled once instead of twice, a nineteenth of a
640x480 frame's pixels. From the same homographies the two ways measure the same residual motion
(docs/performance.md), so modes still differ only in their homographies (homography.py).
"""
import queue
import threading

import cv2
import numpy as np

from .cuts import is_cut, signature
from .homography import make_tracker
from .metrics import dominant_motion
from .video import frames, resize_and_crop, to_square

# The default warps straight into the output square only frames whose short side is more than this many
# times the output's (``direct_square``): at 480p one bilinear sample stands in for the original's two, but
# at 240p (tree.avi, 1.9x the output) the original's full-frame warp blurs visibly before the resize, and
# the single sample measured 0.102 px of residual motion where the original's way measures 0.063.
DIRECT_WARP_MIN = 2
AHEAD_THREAD = "stabilize-ahead"    # the name of ``ahead``'s threads
OWN_DECODER_THREAD_MIN = 640 * 480  # pixels per frame from which decoding gets a thread of its own (decoded_ahead)
# The clip gate's frame pairs are measured on this many threads (metrics.dominant_motion, the same value): while
# the main thread judges a clip, the threads ahead of it stop once their queues are full, and a core would idle.
GATE_THREADS = 2


def clips(path, config, notes=None, homographies=None):
    """Yield ("clip", (first frame, frames uint8 RGB (T, S, S, 3))) for kept clips and ("drop", reason)
    for dropped ones; the first frame counts decoded frames from 0. Raises VideoError for unreadable
    files. ``homographies``: a dict that receives, per kept clip's first frame, the (T, 3, 3) chains
    that mapped each of its frames into the first one's coordinates (identity first) - what a benchmark
    compares with a known camera path."""
    tracker = make_tracker(config)
    kernel = np.ones((config.erode, config.erode), np.uint8)

    def describe(index, frame):
        return index, frame, tracker.describe(frame, index), signature(frame) if config.scene_cuts else None
    stream = ahead(decoded_ahead(frames(path, config.fps, notes, config.decoder), config.lookahead), describe,
                   config.skip_frames, config.lookahead)
    try:
        yield from _clips(stream, tracker, kernel, config, homographies)
    finally:
        stream.close()


def _clips(stream, tracker, kernel, config, homographies):
    pending = next(stream, None)          # (index, frame, description, look): the first frame of the next clip
    for _ in range(config.max_clips):
        if pending is None:
            return
        (start, frame, previous, previous_look), pending = pending, None
        square = direct_square(frame.shape, config)
        output = [resize_and_crop(frame, config.video_size).astype(np.float32)]
        chain = np.eye(3)
        chains = [chain]
        failure = next_first = None      # next_first: a frame that starts the next clip
        for index, frame, current, look in stream:
            if config.scene_cuts:
                if is_cut(previous_look, look, config):
                    next_first = (index, frame, current, look)    # the cut frame starts the next clip
                    break
                previous_look = look
            M, reason = tracker.homography(current, previous, frame.shape)
            if M is None:
                failure = reason
                if config.restart_at_unmatched:      # the frame is fine; only its link to the last one failed
                    next_first = (index, frame, current, look)
                break
            previous = current
            chain = chain @ M
            layers = warped(frame, chain, square, kernel, config)
            blended = blend(output[-1], layers)
            if blended is None:
                break                                  # the warp left the frame: the clip ends here
            output.append(blended)
            chains.append(chain)
            if len(output) >= config.max_frames:
                break
        if failure is not None and not (config.keep_before_unmatched and len(output) >= config.min_frames):
            yield "drop", f"matching failed: {failure}"
        elif len(output) < config.min_frames:
            yield "drop", f"too short ({len(output)} < {config.min_frames} frames)"
        else:
            clip = np.stack(output)
            clip += 0.5                                # to the nearest level: + 0.5, clipped, truncated (in place)
            clip = np.clip(clip, 0, 255, out=clip).astype(np.uint8)[..., ::-1]
            shaky = still_moving(clip, config)
            if shaky:
                yield "drop", shaky
            else:
                if homographies is not None:
                    homographies[start] = np.stack(chains)
                yield "clip", (start, clip)
        # The next clip starts at the cut frame (or the unmatched one), or at the next unread frame (None:
        # end of stream).
        pending = next_first if next_first is not None else next(stream, None)


def warped(frame, chain, square, kernel, config):
    """The frame in the clip's first frame's coordinates as a float32 ``video_size`` square, with its
    coverage (0-255) as a fourth channel: the frame and its coverage (the original warped a white image
    for it) in one warp of an opaque alpha channel. ``square`` None: as the original - warp at full
    resolution, erode the coverage by ``kernel``, then resize and crop. Else (``direct_square``) one warp
    straight into the square, the coverage eroded before it instead, by zeroing the alpha of the frame's
    outer erode // 2 rows and columns."""
    layers = cv2.cvtColor(frame, cv2.COLOR_BGR2BGRA)
    if square is None:
        layers = cv2.warpPerspective(layers, chain, frame.shape[1::-1])
        layers[..., 3] = cv2.erode(cv2.extractChannel(layers, 3), kernel, iterations=1)
        return resize_and_crop(layers, config.video_size).astype(np.float32)
    border = config.erode // 2
    if border:
        alpha = layers[..., 3]
        alpha[:border], alpha[-border:], alpha[:, :border], alpha[:, -border:] = 0, 0, 0, 0
    return cv2.warpPerspective(layers, square @ chain, (config.video_size,) * 2).astype(np.float32)


def blend(previous, layers):
    """The next output frame: ``warped``'s colour where its coverage (fourth channel, 0-255) says, the
    ``previous`` output elsewhere - previous * (1 - mask) + colour * mask, mask = coverage / 255 - or None
    where the coverage is empty. OpenCV's element-wise calls on three-channel masks compute the same float32
    products and sums as numpy broadcasting a one-channel mask, bit for bit, at a sixth of the time: numpy's
    loop over a broadcast channel axis of length 3 is slow (0.51 against 0.08 ms per 128-px frame)."""
    mask = layers[..., 3] / 255.0
    if not mask.any():
        return None
    mask = cv2.merge([mask, mask, mask])
    colour = cv2.cvtColor(layers, cv2.COLOR_BGRA2BGR)
    return cv2.add(cv2.multiply(previous, 1 - mask), cv2.multiply(colour, mask))


def direct_square(frame_shape, config):
    """``warped``'s map straight into the output square, or None where the original's way is kept: asked
    for (``warp_full_frame``), or a frame whose short side is at most DIRECT_WARP_MIN times the output's."""
    if config.warp_full_frame or min(frame_shape[:2]) <= DIRECT_WARP_MIN * config.video_size:
        return None
    return to_square(frame_shape, config.video_size)


def still_moving(clip, config):
    """Why a stabilised clip (uint8 RGB (T, S, S, 3)) is not kept - its dominant motion above
    ``config.max_residual`` output px per frame - or None (also when the gate is off, 0)."""
    residual = dominant_motion(clip, threads=GATE_THREADS if config.lookahead else 1) if config.max_residual else 0.0
    if residual > config.max_residual:
        return f"residual motion ({residual:.2f} output px per frame > {config.max_residual})"
    return None


def decoded_ahead(frames_, depth):
    """``frames_`` (a ``video.frames`` generator), read from the decoder by a thread of their own up to
    ``depth`` frames ahead when the frames have at least OWN_DECODER_THREAD_MIN pixels: the describing
    thread then does not wait on the decoder. Measured per video, alternating (docs/performance.md): with
    the ffmpeg program, 1.06-1.27x the frames/s at 640x480 and more, 0.85-0.95x on smaller frames, where
    decoding is cheap and the hand-over between threads is not; with OpenCV's decoder in the process
    (``decoder``), 1.00-1.02x at 640x480, 0.95-1.12x above and 0.97-0.99x below. The same frames either way."""
    first = next(frames_, None)
    if first is None:
        return
    own_thread = first.shape[0] * first.shape[1] >= OWN_DECODER_THREAD_MIN
    rest = ahead(frames_, lambda n, frame: frame, depth=depth) if own_thread else frames_
    try:
        yield first
        yield from rest
    finally:
        rest.close()
        frames_.close()        # the decoder process ends now, even if ``rest`` never started


def ahead(items, work, skip=0, depth=4):
    """A generator of ``work(n, item)`` for the items of generator ``items`` from the ``skip``-th on, read
    and worked on by a thread of its own up to ``depth`` items ahead of the consumer (``clips`` chains two:
    reading the decoder, then describing the frames - corners, features -, both overlapping with matching,
    warping and blending). Errors reach the consumer in order; closing the generator stops the thread, which
    closes ``items``. ``depth`` 0: all in the caller's thread, one item at a time, as the original worked."""
    if depth <= 0:
        for n, item in enumerate(items):
            if n >= skip:
                yield work(n, item)
        return
    results = queue.Queue(depth)
    stop = threading.Event()

    def produce():
        try:
            for n, item in enumerate(items):
                if stop.is_set():
                    return
                if n >= skip:
                    results.put((True, work(n, item)))
        except BaseException as error:      # noqa: BLE001 - handed to the consumer, which raises it
            results.put((False, error))
        finally:
            items.close()                   # the decoder process ends now, not at garbage collection
        results.put(None)

    thread = threading.Thread(target=produce, daemon=True, name=AHEAD_THREAD)
    thread.start()
    try:
        while True:
            entry = results.get()
            if entry is None:
                return
            ok, value = entry
            if not ok:
                raise value
            yield value
    finally:
        stop.set()
        while thread.is_alive():            # unblock a producer waiting on a full queue
            try:
                results.get(timeout=0.05)
            except queue.Empty:
                pass
        thread.join()

