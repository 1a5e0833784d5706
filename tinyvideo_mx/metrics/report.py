"""``tinyvideo-mx report RUN``: one self-contained HTML page about a run, to open in a browser.

It holds the loss and statistics curves (PNG, drawn with matplotlib's Agg backend, embedded), the sample
grids written during training (GIFs, embedded, newest last), and the configuration. Everything is inside
the one file (base64 data URLs), so it can be mailed or archived with nothing beside it.
"""
import base64
import glob
import html
import io
import json
import os

from ..errors import FileProblem, SettingError
from ..fsutil import read_regular_file, write_text_atomic

CURVES = [
    ("Losses", ["loss_d", "loss_g_adv"], None),
    ("Mask", ["mask_mean", "stats/mask_mean", "stats/mask_coverage"], None),
    ("Weight-free statistics, generated / real (1 = like the training clips)",
     ["stats/checkerboard_ratio", "stats/flicker_ratio", "stats/motion_ratio"], 1.0),
    ("Colour, variety and ends, generated / real (collapse: spread and diversity < 1; fading ends: end contrast < 1)",
     ["stats/colour_spread_ratio", "stats/colour_std_ratio", "stats/diversity_ratio", "stats/end_contrast_ratio"], 1.0),
    ("Speed", ["clips_per_s"], None),
    ("Learning rates (Adam; constant unless --lr-fall-from)", ["lr_g", "lr_d"], None),
]


MAX_METRICS_BYTES = 1 << 30     # 10 million logged iterations
MAX_GIF_BYTES = 64 << 20
MAX_CONFIG_BYTES = 1 << 20


def _read(path, limit, what):
    """A run file's bytes; one line (SettingError) if it is not a regular file of at most ``limit``."""
    try:
        return read_regular_file(path, limit, what)
    except FileProblem as e:
        raise SettingError(str(e)) from None


def read_metrics(run_dir):
    """{name: [(iteration, value)]} from metrics.jsonl (lines that do not parse are skipped)."""
    series = {}
    path = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.lexists(path):
        return series
    for line in _read(path, MAX_METRICS_BYTES, "metrics file").decode("utf-8", "replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        step = record.get("iteration")
        for key, value in record.items():
            if key != "iteration" and isinstance(value, (int, float)):
                series.setdefault(key, []).append((step, value))
    return series


def _plot(title, names, series, reference):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    present = [n for n in names if series.get(n)]
    if not present:
        return None
    figure, axes = plt.subplots(figsize=(7.5, 3.2), dpi=100)
    for name in present:
        steps, values = zip(*series[name])
        axes.plot(steps, values, label=name, linewidth=1.2)
    if reference is not None:
        axes.axhline(reference, color="grey", linestyle="--", linewidth=0.8)
    axes.set_title(title, fontsize=10)
    axes.set_xlabel("iteration")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def _data_url(data, mime):
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def write_report(run_dir, out=None):
    """Write the page (default ``<run>/report.html``); returns its path."""
    if not os.path.isdir(run_dir):
        raise SettingError(f"{run_dir}: no such run folder")
    series = read_metrics(run_dir)
    grids = sorted(glob.glob(os.path.join(glob.escape(run_dir), "samples", "iter*_video.gif")))
    if not series and not grids:
        raise SettingError(f"{run_dir}: no metrics.jsonl and no sample grids: is this a run folder?")
    parts = [f"<h1>{html.escape(os.path.abspath(run_dir))}</h1>"]
    for title, names, reference in CURVES:
        png = _plot(title, names, series, reference)
        if png:
            parts.append(f'<img class="curve" alt="{html.escape(title)}" src="{_data_url(png, "image/png")}">')
    if grids:
        parts.append("<h2>Samples during training (fixed latent vectors)</h2>")
        for path in grids:
            mask = path.replace("_video.gif", "_mask.gif")
            figures = [f'<img alt="video" src="{_data_url(_read(path, MAX_GIF_BYTES, "sample grid"), "image/gif")}">']
            if os.path.lexists(mask):
                figures.append(f'<img alt="mask" src="{_data_url(_read(mask, MAX_GIF_BYTES, "sample grid"), "image/gif")}">')
            parts.append(f"<figure>{''.join(figures)}<figcaption>iteration "
                         f"{int(os.path.basename(path)[4:12])}: video, mask</figcaption></figure>")
    config = os.path.join(run_dir, "config.json")
    if os.path.lexists(config):
        text = _read(config, MAX_CONFIG_BYTES, "configuration").decode("utf-8", "replace")
        parts.append(f"<h2>Configuration</h2><pre>{html.escape(text, quote=False)}</pre>")
    page = ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>tinyvideo-mx run report</title>"
            "<style>body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:60em;padding:0 1em}"
            "img{image-rendering:pixelated;margin:0.3em}img.curve{display:block;max-width:100%}"
            "figure{display:inline-block;margin:0.5em}pre{background:#f6f6f6;padding:1em;overflow:auto}</style>"
            "</head><body>" + "\n".join(parts) + "</body></html>\n")
    out = out or os.path.join(run_dir, "report.html")
    write_text_atomic(out, page)
    return out
