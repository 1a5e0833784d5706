"""Videos with known camera motion: the ground truth for tests and benchmarks (after stabilisation,
consecutive frames should not move).

``camera`` films a scene along a simple path (tests). ``shaky_video(seed)`` draws a whole scenario from
its seed - hand-held shake of some amplitude and frequency, sometimes a fast pan beyond the optical
flow's reach, zoom, roll, motion blur, rolling-shutter skew, an independently moving object covering a
large part of the frame, and a textured or nearly plain (wall-like) background - so a benchmark can hold
a range of seeds out of tuning (bench/stabilize.py).
"""
import dataclasses

import cv2
import numpy as np


def texture(seed, size, tint=(1.0, 1.0, 1.0)):
    """A smooth random colour texture (uint8 BGR, size x size) with detail at two scales."""
    rng = np.random.default_rng(seed)
    noise = rng.uniform(0, 255, (size // 8, size // 8, 3)).astype(np.float32)
    image = cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC)
    image += cv2.resize(rng.uniform(-60, 60, (size // 2, size // 2, 3)).astype(np.float32), (size, size))
    return np.clip(image * np.array(tint), 0, 255).astype(np.uint8)


def layered_texture(seed, size, tint=(1.0, 1.0, 1.0)):
    """A colour texture (uint8 BGR, size x size) with structure at every scale from a sixth of the image
    down to a few pixels, stronger at coarse scales as in natural images."""
    rng = np.random.default_rng([seed, 5])
    image = np.full((size, size, 3), 128.0, np.float32)
    for cells, amplitude in ((6, 70.0), (24, 45.0), (96, 30.0), (384, 18.0)):
        cells = min(cells, size)
        noise = rng.uniform(-amplitude, amplitude, (cells, cells, 3)).astype(np.float32)
        image += cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC)
    return np.clip(image * np.array(tint), 0, 255).astype(np.uint8)


def plain_wall(seed, size):
    """A nearly plain surface (uint8 BGR): one colour, a slow shading and faint grain - little for corners
    or features to hold on to, like a painted wall."""
    rng = np.random.default_rng(seed)
    colour = rng.uniform(90, 200, 3)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    shading = 1.0 + 0.15 * (xx - 0.5) + 0.1 * (yy - 0.5)
    grain = cv2.resize(rng.normal(0, 4, (size // 4, size // 4)).astype(np.float32), (size, size))
    image = colour[None, None, :] * shading[..., None] + grain[..., None]
    return np.clip(image, 0, 255).astype(np.uint8)


def camera(scene, n, motion, size=(240, 320)):
    """n frames (h, w) = ``size`` of a camera over ``scene``; motion(t) -> (dx, dy, degrees, zoom)."""
    h, w = size
    cy, cx = scene.shape[0] / 2, scene.shape[1] / 2
    out = []
    for t in range(n):
        dx, dy, angle, zoom = motion(t)
        M = cv2.getRotationMatrix2D((cx, cy), angle, zoom)
        M[0, 2] += -cx + w / 2 + dx
        M[1, 2] += -cy + h / 2 + dy
        out.append(cv2.warpAffine(scene, M, (w, h), flags=cv2.INTER_LINEAR))
    return out


MOTIONS = {
    "translate": lambda t: (2.5 * t, 1.2 * t, 0.0, 1.0),
    "rotate": lambda t: (0.0, 0.0, 0.4 * t, 1.0),
    "zoom": lambda t: (0.0, 0.0, 0.0, 1.0 + 0.006 * t),
}


WHIP_PAN_PX = 20.0   # pans faster than this per frame last 8 frames (camera_path)


@dataclasses.dataclass
class Scenario:
    """What ``shaky_video`` films; every field is drawn from the seed (``Scenario.draw``)."""
    seed: int
    background: str          # "texture" or "wall"
    shake_px: float          # amplitude of the hand-held shake (pixels at 640 wide)
    shake_hz: float          # its main frequency (at 25 frames/s)
    pan_px: float            # pan per frame: slow (a few px, throughout) or a whip (tens of px, for 8 frames
                             # mid-video; beyond ~40 px the flow's pyramid cannot follow)
    zoom: float              # relative zoom per frame
    roll_deg: float          # amplitude of the rolling (rotation) shake, degrees
    blur: bool               # motion blur along each frame's motion
    rolling_shutter: float   # share of a frame's motion that its last row lags its first (skew)
    object_share: float      # width of the moving object over the frame's (0: none)

    @classmethod
    def draw(cls, seed):
        rng = np.random.default_rng([seed, 2026])
        return cls(seed=seed, background="wall" if rng.random() < 0.3 else "texture",
                   shake_px=float(rng.choice([1.0, 3.0, 8.0, 16.0])), shake_hz=float(rng.uniform(0.5, 6.0)),
                   pan_px=float(rng.choice([0.0, 0.0, 4.0, 50.0])), zoom=float(rng.choice([0.0, 0.0, 0.004, -0.004])),
                   roll_deg=float(rng.choice([0.0, 0.0, 0.5, 1.5])), blur=bool(rng.random() < 0.4),
                   rolling_shutter=float(rng.choice([0.0, 0.0, 0.5])),
                   object_share=float(rng.choice([0.0, 0.25, 0.4])))

    def describe(self):
        parts = [self.background, f"shake {self.shake_px:g} px at {self.shake_hz:.1f} Hz"]
        if self.pan_px:
            parts.append(f"{'whip pan' if self.pan_px > WHIP_PAN_PX else 'pan'} {self.pan_px:g} px/frame")
        if self.zoom:
            parts.append(f"zoom {self.zoom:+g}/frame")
        if self.roll_deg:
            parts.append(f"roll {self.roll_deg:g} deg")
        if self.blur:
            parts.append("blur")
        if self.rolling_shutter:
            parts.append("rolling shutter")
        if self.object_share:
            parts.append(f"object {self.object_share:.0%} wide")
        return ", ".join(parts)


def camera_path(scenario, n, fps=25.0):
    """[(dx, dy, degrees, zoom)] per frame: a pan, a zoom and a hand-held shake (three sines per axis
    at the scenario's frequency and its multiples, random phases)."""
    rng = np.random.default_rng([scenario.seed, 1])
    t = np.arange(n) / fps
    path = []
    for axis in range(3):
        phases = rng.uniform(0, 2 * np.pi, 3)
        weights = np.array([1.0, 0.5, 0.25])
        wave = sum(wt * np.sin(2 * np.pi * scenario.shake_hz * (k + 1) * t + ph)
                   for k, (wt, ph) in enumerate(zip(weights, phases))) / weights.sum()
        path.append(wave)
    if scenario.pan_px > WHIP_PAN_PX:             # a whip pan: 8 fast frames in the middle
        speed = np.where((np.arange(n) >= n // 2) & (np.arange(n) < n // 2 + 8), scenario.pan_px, 0.0)
    else:
        speed = np.full(n, scenario.pan_px)
    travel = np.concatenate([[0.0], np.cumsum(speed[1:])])
    dx = travel + scenario.shake_px * path[0]
    dy = 0.3 * travel + scenario.shake_px * path[1]
    angle = scenario.roll_deg * path[2]
    zoom = (1.0 + scenario.zoom) ** np.arange(n)
    return list(zip(dx, dy, angle, zoom))


def shaky_video(seed, n=90, size=(480, 640)):
    """(frames uint8 BGR, Scenario, cameras): ``n`` frames of ``size`` filmed as ``Scenario.draw(seed)``
    says; ``cameras`` (n, 3, 3) maps scene coordinates to each frame's pixels - the ground truth of the
    camera's motion (``true_residual``)."""
    scenario = Scenario.draw(seed)
    h, w = size
    path = camera_path(scenario, n)
    reach = int(max(abs(p[0]) for p in path) + max(abs(p[1]) for p in path))
    side = int(1.6 * max(h, w)) + 2 * reach
    scene = (layered_texture(seed, side) if scenario.background == "texture" else plain_wall(seed, side))
    rng = np.random.default_rng([seed, 3])
    thing = layered_texture(seed + 7919, 256, tint=tuple(rng.uniform(0.4, 1.0, 3)))
    cy, cx = side / 2, side / 2
    frames, cameras = [], []
    for index, (dx, dy, angle, zoom) in enumerate(path):
        M = np.vstack([cv2.getRotationMatrix2D((cx, cy), angle, zoom), [0, 0, 1]])
        M[0, 2] += -cx + w / 2 + dx
        M[1, 2] += -cy + h / 2 + dy
        if scenario.rolling_shutter and index:
            # rows are exposed one after another: the bottom row sees the camera a share of the
            # frame's motion later, which skews the image along the motion
            step = np.subtract(path[index][:2], path[index - 1][:2]) * scenario.rolling_shutter
            M = M @ np.array([[1, step[0] / h, 0], [0, 1 + step[1] / h, 0], [0, 0, 1]])
        cameras.append(M)
        frame = cv2.warpAffine(scene, M[:2], (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        if scenario.object_share:
            frame = _with_object(frame, thing, scenario.object_share, index, n)
        if scenario.blur and index:
            frame = _motion_blur(frame, np.subtract(path[index][:2], path[index - 1][:2]))
        frames.append(frame)
    return frames, scenario, np.stack(cameras)


def true_residual(cameras, first, chains, frame_size, out_size, grid=16):
    """Residual camera motion of one stabilised clip against the ground truth, per frame step: the mean
    distance a scene point moves between consecutive output frames, in pixels of the ``out_size``
    square output (as ``metrics.residual_motion`` reports its shift), over a ``grid`` x ``grid`` of
    points on the centre square the output is cut from. ``cameras`` (n, 3, 3) scene -> frame pixels
    (``shaky_video``); ``chains`` (T, 3, 3) frame ``first + t`` -> frame ``first`` (the stabiliser's,
    identity first). A perfect stabiliser puts every scene point where the first frame had it: 0.
    Unlike a measure on the written pixels, an object moving on its own does not count."""
    h, w = frame_size
    side = min(h, w)
    u = (np.arange(grid) + 0.5) / grid * side
    xs, ys = np.meshgrid(u + (w - side) / 2, u + (h - side) / 2)
    q = np.stack([xs.ravel(), ys.ravel(), np.ones(grid * grid)])        # points of the first frame
    scene = np.linalg.solve(cameras[first], q)
    positions = []
    for t, chain in enumerate(chains):
        p = chain @ cameras[first + t] @ scene
        positions.append(p[:2] / p[2])
    steps = [np.hypot(*(b - a)).mean() for a, b in zip(positions, positions[1:])]
    return float(np.mean(steps)) * out_size / side if steps else 0.0


def _with_object(frame, thing, share, index, n):
    """A held object (a textured rounded block) ``share`` of the frame wide, swinging across it on a path
    of its own (independent of the camera)."""
    h, w = frame.shape[:2]
    ow, oh = int(share * w), int(share * w * 0.8)
    phase = index / max(1, n - 1)
    x = int((w - ow) * (0.5 + 0.45 * np.sin(2 * np.pi * 0.8 * phase)))
    y = int((h - oh) * (0.5 + 0.35 * np.cos(2 * np.pi * 0.6 * phase)))
    patch = cv2.resize(thing, (ow, oh))
    mask = np.zeros((oh, ow), np.uint8)
    cv2.ellipse(mask, (ow // 2, oh // 2), (ow // 2, oh // 2), 0, 0, 360, 255, -1)
    region = frame[y:y + oh, x:x + ow]
    region[mask > 0] = patch[mask > 0]
    return frame


def _motion_blur(frame, step):
    """Blur along the frame's motion ``step`` (dx, dy): a line kernel as long as the motion."""
    length = int(round(np.hypot(*step)))
    if length < 2:
        return frame
    kernel = np.zeros((length, length), np.float32)
    centre = (length - 1) / 2
    direction = np.asarray(step, float) / np.hypot(*step)
    for s in np.linspace(-centre, centre, 2 * length):
        kernel[int(round(centre + s * direction[1])), int(round(centre + s * direction[0]))] = 1
    return cv2.filter2D(frame, -1, kernel / kernel.sum())
