"""Weight-free quality statistics of video clips: what a person sees in a sample grid, as numbers.

Nothing here needs downloaded weights, so every run can compute them, during training and after. Clips
are (N, 3, T, H, W) arrays in [-1, 1] (the networks' range); every statistic is computed on [0, 1] pixel
values so the numbers read as shares of the full brightness range.

* ``checkerboard``: mean |response| of the 2x2 alternating-sign filter [[+1, -1], [-1, +1]] / 4 over
  every frame - the signature artefact of transposed convolutions (0 on any smooth image, 0.5 at most);
* ``flicker``: mean |frame t+1 - frame t|: 0 for a static clip;
* ``motion``: share of pixels whose brightness changes by more than ``MOTION_THRESHOLD`` between
  consecutive frames (foreground motion: the moving objects' area);
* ``channel_mean_*`` / ``channel_std_*``: per-colour moments over the whole set;
* ``colour_spread``: how much the clips differ in colour - the standard deviation, over clips, of each
  clip's mean colour (root mean over the three colours). A generator whose backgrounds collapsed to a
  few tints scores low;
* ``colour_std``: colour variation *within* a clip (each clip's per-colour standard deviation, averaged);
* ``end_contrast``: contrast (standard deviation of brightness) of the first and last frames over that
  of the middle frames: 1 for real footage; a generator whose zero temporal padding fades the ends
  scores below 1;
* ``diversity`` (``compare``): mean distance from each clip to its nearest other clip in the embedding
  below, against the same for as many real clips: 1x is as varied as the real set, near 0 is collapse;
* ``frechet_pixels``: the Frechet distance between Gaussians fitted to a fixed, weight-free embedding of
  each clip (its colour moments and its 4x4-pixel, 2-segment thumbnail plus the thumbnail's temporal
  difference, 150 numbers), against real clips. Reported next to the same distance between two halves
  of the real set, so real-vs-real reads ~1x. A Gaussian of 150 numbers cannot be estimated from fewer
  clips than that (with 18 clips per half, grey noise scored "better than real"), so the row is given
  only with at least FRECHET_MIN_CLIPS generated clips and twice that many real ones; otherwise it says
  what it needs and shows no value.
For generated clips, ``mask_mean`` and ``mask_coverage`` (share of mask pixels > 0.5) describe the
generator's mask. ``compare`` puts generated and real statistics side by side with their ratios.
"""
import numpy as np

from .frechet import feature_statistics, frechet_distance

MOTION_THRESHOLD = 0.05    # a change of 5 % of the brightness range counts as motion
THUMB_FRAMES, THUMB_SIZE = 2, 4
STATISTICS = ("checkerboard", "flicker", "motion", "channel_mean_r", "channel_mean_g", "channel_mean_b",
              "channel_std_r", "channel_std_g", "channel_std_b", "colour_spread", "colour_std", "end_contrast")
EMBEDDING_SIZE = 150
FRECHET_MIN_CLIPS = EMBEDDING_SIZE      # per fitted Gaussian
ROW_FIELDS = ("statistic", "generated", "real", "ratio", "note")
# A set of few clips is itself a draw: beside these rows, ``compare`` says what as many real clips score
# against the whole real set (5-95 % of BAND_DRAWS random subsets), so a ratio outside that band means
# something and one inside it may be luck. 16 of the demo's 256 reference clips score a colour spread
# of 0.83-1.12x of all 256.
BANDED = ("checkerboard", "flicker", "colour_spread", "colour_std", "end_contrast", "diversity")
BAND_DRAWS = 200


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


def colour_spread(clips):
    """Standard deviation over clips of each clip's mean colour, root mean over the colours (0 for one clip)."""
    return _spread(_unit(clips).mean(axis=(2, 3, 4)))


def _spread(means):
    """colour_spread from each clip's mean colour, (N, 3)."""
    return float(np.sqrt(means.var(axis=0).mean()))


def colour_std(clips):
    """Each clip's per-colour standard deviation, averaged over clips and colours."""
    return float(_unit(clips).std(axis=(2, 3, 4)).mean())


def end_contrast(clips):
    """Brightness contrast of the first and last frames over that of the frames between them (1.0 for
    clips of fewer than 3 frames, or with no contrast in the middle)."""
    return _ends_over_middle(_frame_contrast(clips).mean(axis=0))


def _frame_contrast(clips):
    """Each clip's brightness contrast per frame, (N, T)."""
    return _unit(clips).mean(axis=1).std(axis=(2, 3))


def _ends_over_middle(contrast):
    """end_contrast from the contrast per frame averaged over clips, (T,)."""
    if len(contrast) < 3:
        return 1.0
    middle = contrast[1:-1].mean()
    return float((contrast[0] + contrast[-1]) / 2 / middle) if middle > 0 else 1.0


def nearest_neighbour_distance(clips):
    """Mean Euclidean distance from each clip's embedding to its nearest other clip's (0 for one clip)."""
    return _nearest_neighbour_distance(embedding(clips))


def _nearest_neighbour_distance(e):
    if len(e) < 2:
        return 0.0
    squared = (e * e).sum(axis=1)
    d2 = np.maximum(squared[:, None] + squared[None, :] - 2 * e @ e.T, 0.0)
    np.fill_diagonal(d2, np.inf)
    return float(np.sqrt(d2.min(axis=1)).mean())


def clip_statistics(clips, mask=None):
    """{statistic: value} for a set of clips (and the generator's mask, if given)."""
    x = _unit(clips)
    out = {"checkerboard": checkerboard(clips), "flicker": flicker(clips), "motion": motion(clips)}
    for c, name in enumerate("rgb"):
        out[f"channel_mean_{name}"] = float(x[:, c].mean())
        out[f"channel_std_{name}"] = float(x[:, c].std())
    out.update(colour_spread=colour_spread(clips), colour_std=colour_std(clips), end_contrast=end_contrast(clips))
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


def _ratio(value, reference):
    return value / reference if reference else float("inf") if value else 1.0


def compare(generated, real, mask=None):
    """Rows {statistic, generated, real, ratio, note} for generated clips against real ones.
    ``diversity`` compares with as many real clips as there are generated ones (nearest neighbours are
    nearer in a larger set). The real column of ``frechet_pixels`` is the distance between the two halves
    of ``real``, so its ratio says how far generated clips are, in units of real-vs-real sampling noise;
    with too few clips for its Gaussians the row has no values and a note saying what it needs."""
    gen, ref = clip_statistics(generated, mask), clip_statistics(real)
    n = min(len(generated), len(real))
    diverse, real_diverse = nearest_neighbour_distance(generated[:n]), nearest_neighbour_distance(real[:n])
    bands = real_bands(real, len(generated), dict(ref, diversity=real_diverse)) if len(generated) < len(real) else {}
    rows = [(name, gen[name], ref[name], _ratio(gen[name], ref[name]), bands.get(name)) for name in STATISTICS]
    rows.append(("diversity", diverse, real_diverse, _ratio(diverse, real_diverse),
                 "; ".join(filter(None, [f"{n} clips each", bands.get("diversity")]))))
    half = len(real) // 2
    if len(generated) < FRECHET_MIN_CLIPS or half < FRECHET_MIN_CLIPS:
        rows.append(("frechet_pixels", None, None, None,
                     f"needs {FRECHET_MIN_CLIPS} generated and {2 * FRECHET_MIN_CLIPS} real clips "
                     f"(has {len(generated)} and {len(real)}): evaluate --stats --stats-clips {2 * FRECHET_MIN_CLIPS}"))
    else:
        real_noise = frechet_pixels(real[:half], real[half:])
        distance = frechet_pixels(generated, real[:half])
        rows.append(("frechet_pixels", distance, real_noise, _ratio(distance, real_noise), None))
    for name in ("mask_mean", "mask_coverage"):
        if name in gen:
            rows.append((name, gen[name], None, None, None))
    return [dict(zip(ROW_FIELDS, row)) for row in rows]


def real_bands(real, n, reference, draws=BAND_DRAWS):
    """{statistic: note} for the BANDED statistics: the 5-95 % range of the ratio that ``n`` real clips,
    drawn ``draws`` times without replacement (a fixed seed), score against ``reference`` (the real set's
    values) - how far a set of ``n`` clips moves by chance. What each statistic needs of a clip is
    computed once per clip; a draw only averages those (clips are all one size, so the mean of per-clip
    means is the set's mean)."""
    x = _unit(real)
    per_clip = {"checkerboard": np.array([checkerboard(real[i:i + 1]) for i in range(len(real))]),
                "flicker": np.array([flicker(real[i:i + 1]) for i in range(len(real))]),
                "colour_std": x.std(axis=(2, 3, 4)).mean(axis=1)}
    means, contrast, features = x.mean(axis=(2, 3, 4)), _frame_contrast(real), embedding(real)
    rng = np.random.default_rng(0)
    ratios = {name: [] for name in BANDED}
    for _ in range(draws):
        idx = np.sort(rng.choice(len(real), n, replace=False))
        values = {name: float(part[idx].mean()) for name, part in per_clip.items()}
        values.update(colour_spread=_spread(means[idx]), end_contrast=_ends_over_middle(contrast[idx].mean(axis=0)),
                      diversity=_nearest_neighbour_distance(features[idx]))
        for name in BANDED:
            ratios[name].append(_ratio(values[name], reference[name]))
    return {name: f"{n} real clips score {low:.2f}-{high:.2f}x (5-95 % of {draws} draws)"
            for name, (low, high) in ((k, _percentiles(v, (5, 95))) for k, v in ratios.items())}


def _percentiles(values, qs):
    """np.percentile, where a ratio to a zero reference (inf) may be among the values: interpolating
    between two infinities gives nan (inf - inf); that percentile is inf."""
    with np.errstate(invalid="ignore"):
        return np.nan_to_num(np.percentile(values, qs), nan=np.inf)


def format_rows(rows):
    """The table of ``compare``'s rows, one line each."""
    lines = [f"{'statistic':<16} {'generated':>10} {'real':>10} {'ratio':>7}"]
    for row in rows:
        value, real, ratio = row["generated"], row["real"], row["ratio"]
        value_text = f"{value:>10.4f}" if value is not None else f"{'-':>10}"
        real_text = f"{real:>10.4f}" if real is not None else f"{'':>10}"
        ratio_text = f"{ratio:>6.2f}x" if ratio is not None else f"{'':>7}"
        note = f"  ({row['note']})" if row.get("note") else ""
        lines.append(f"{row['statistic']:<16} {value_text} {real_text} {ratio_text}{note}".rstrip())
    return lines
