"""Weight-free quality statistics of video clips: what a person sees in a sample grid, as numbers.

Nothing here needs downloaded weights, so every run can compute them, during training and after. Clips
are (N, 3, T, H, W) arrays in [-1, 1] (the networks' range); every statistic is computed on [0, 1] pixel
values so the numbers read as shares of the full brightness range.

* ``checkerboard``: mean |response| of the 2x2 alternating-sign filter [[+1, -1], [-1, +1]] / 4 over
  every frame - the signature artefact of transposed convolutions (0 on any smooth image, 0.5 at most);
* ``flicker``: mean |frame t+1 - frame t|: 0 for a static clip;
* ``motion``: share of pixels whose brightness changes by more than ``MOTION_THRESHOLD`` between
  consecutive frames (foreground motion: the moving objects' area);
* ``channel_mean_*`` / ``channel_std_*``: per-colour moments;
* ``frechet_pixels``: the Frechet distance between Gaussians fitted to a fixed, weight-free embedding of
  each clip (its colour moments and its 4x4-pixel, 2-segment thumbnail plus the thumbnail's temporal
  difference, 150 numbers), against real clips. Reported next to the same distance between two halves
  of the real set, so real-vs-real reads ~1x.
For generated clips, ``mask_mean`` and ``mask_coverage`` (share of mask pixels > 0.5) describe the
generator's mask. ``compare`` puts generated and real statistics side by side with their ratios.
"""
import numpy as np

from .frechet import feature_statistics, frechet_distance

MOTION_THRESHOLD = 0.05    # a change of 5 % of the brightness range counts as motion
THUMB_FRAMES, THUMB_SIZE = 2, 4
STATISTICS = ("checkerboard", "flicker", "motion", "channel_mean_r", "channel_mean_g", "channel_mean_b",
              "channel_std_r", "channel_std_g", "channel_std_b")


def _unit(clips):
    clips = np.asarray(clips, np.float32)
    if clips.ndim != 5 or clips.shape[1] != 3:
        raise ValueError(f"expected clips of shape (N, 3, T, H, W), got {clips.shape}")
    return (clips + 1.0) * 0.5


def checkerboard(clips):
    x = _unit(clips)
    response = (x[..., :-1, :-1] - x[..., :-1, 1:] - x[..., 1:, :-1] + x[..., 1:, 1:]) * 0.25
    return float(np.abs(response).mean())


def flicker(clips):
    x = _unit(clips)
    return float(np.abs(np.diff(x, axis=2)).mean()) if x.shape[2] > 1 else 0.0


def motion(clips, threshold=MOTION_THRESHOLD):
    """Share of (pixel, frame pair) whose brightness (mean over colours) changes by more than threshold."""
    brightness = _unit(clips).mean(axis=1)
    if brightness.shape[1] < 2:
        return 0.0
    return float((np.abs(np.diff(brightness, axis=1)) > threshold).mean())


def clip_statistics(clips, mask=None):
    """{statistic: value} for a set of clips (and the generator's mask, if given)."""
    x = _unit(clips)
    out = {"checkerboard": checkerboard(clips), "flicker": flicker(clips), "motion": motion(clips)}
    for c, name in enumerate("rgb"):
        out[f"channel_mean_{name}"] = float(x[:, c].mean())
        out[f"channel_std_{name}"] = float(x[:, c].std())
    if mask is not None:
        mask = np.asarray(mask, np.float32)
        out["mask_mean"] = float(mask.mean())
        out["mask_coverage"] = float((mask > 0.5).mean())
    return out


def embedding(clips):
    """(N, 150) weight-free features: per-clip colour means and stds (6), a 3 x 2 x 4 x 4 area-averaged
    thumbnail (96) and the thumbnail's frame difference, from 4 frame segments halved (48)."""
    x = _unit(clips)
    n, c, t, h, w = x.shape
    ts, hs, ws = t // (2 * THUMB_FRAMES), h // THUMB_SIZE, w // THUMB_SIZE
    fine = x[:, :, :ts * 2 * THUMB_FRAMES, :hs * THUMB_SIZE, :ws * THUMB_SIZE].reshape(
        n, c, 2 * THUMB_FRAMES, ts, THUMB_SIZE, hs, THUMB_SIZE, ws).mean(axis=(3, 5, 7))
    thumb = fine.reshape(n, c, THUMB_FRAMES, 2, THUMB_SIZE, THUMB_SIZE).mean(axis=3)
    change = np.abs(np.diff(fine, axis=2)).reshape(n, c, THUMB_FRAMES * 2 - 1, -1)[:, :, ::2].mean(axis=2)
    moments = np.concatenate([x.mean(axis=(2, 3, 4)), x.std(axis=(2, 3, 4))], axis=1)
    return np.concatenate([moments, thumb.reshape(n, -1), change.reshape(n, -1)], axis=1).astype(np.float64)


def frechet_pixels(clips_a, clips_b):
    mu_a, sigma_a = feature_statistics(embedding(clips_a))
    mu_b, sigma_b = feature_statistics(embedding(clips_b))
    return frechet_distance(mu_a, sigma_a, mu_b, sigma_b)


def compare(generated, real, mask=None):
    """Rows (statistic, generated, real, ratio) for generated clips against real ones. The real
    column of ``frechet_pixels`` is the distance between the two halves of ``real``, so its ratio says
    how far generated clips are, in units of real-vs-real sampling noise."""
    gen, ref = clip_statistics(generated, mask), clip_statistics(real)
    rows = [(name, gen[name], ref[name], gen[name] / ref[name] if ref[name] else float("inf") if gen[name] else 1.0)
            for name in STATISTICS]
    half = len(real) // 2
    real_noise = frechet_pixels(real[:half], real[half:])
    distance = frechet_pixels(generated, real[:half])
    rows.append(("frechet_pixels", distance, real_noise, distance / real_noise if real_noise else float("inf")))
    for name in ("mask_mean", "mask_coverage"):
        if name in gen:
            rows.append((name, gen[name], None, None))
    return rows


def format_rows(rows):
    lines = [f"{'statistic':<16} {'generated':>10} {'real':>10} {'ratio':>7}"]
    for name, value, real, ratio in rows:
        real_text = f"{real:>10.4f}" if real is not None else f"{'':>10}"
        ratio_text = f"{ratio:>6.2f}x" if ratio is not None else ""
        lines.append(f"{name:<16} {value:>10.4f} {real_text} {ratio_text}")
    return lines
