"""Learning curves of one or more runs, for docs/learning.md: the weight-free statistics (as ratios to the
training clips) and the losses against iterations and against wall time, one PNG per quantity with one
line per run.

    python bench/learning_curves.py runs/demo runs/demo-bs32 --out docs/learning

Reads each run's metrics.jsonl (written during training: losses every log_every iterations, statistics of
the fixed sample grid every sample_every). Wall time is rebuilt from the logged clips/s.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

QUANTITIES = [("stats/checkerboard_ratio", "checkerboard energy, generated / real"),
              ("stats/flicker_ratio", "flicker, generated / real"),
              ("stats/motion_ratio", "moving pixels, generated / real"),
              ("stats/colour_spread_ratio", "spread of per-clip mean colours, generated / real"),
              ("stats/colour_std_ratio", "colour standard deviation within clips, generated / real"),
              ("stats/end_contrast_ratio", "first/last-frame contrast over the middle frames', generated / real"),
              ("stats/diversity_ratio", "nearest-neighbour distance (diversity), generated / real"),
              ("stats/mask_mean", "mean mask"),
              ("loss_d", "D loss"), ("loss_g_adv", "G adversarial loss")]


def wall_times(series, batch_sizes):
    """{iteration: seconds since the start}, from clips/s logged every log_every iterations."""
    times, elapsed, last = {0: 0.0}, 0.0, 0
    for step, rate in series.get("clips_per_s", []):
        elapsed += (step - last) * batch_sizes / max(rate, 1e-9)
        times[step], last = elapsed, step
    return times


def main():
    import json

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tinyvideo_mx.metrics.report import read_metrics
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--out", default="docs/learning", help="folder for the PNGs")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    runs = {}
    for run in args.runs:
        with open(os.path.join(run, "config.json")) as f:
            batch = json.load(f)["batch_size"]
        series = read_metrics(run)
        runs[os.path.basename(os.path.normpath(run))] = (series, wall_times(series, batch))
    for key, title in QUANTITIES:
        figure, (by_step, by_time) = plt.subplots(1, 2, figsize=(10, 3.2), dpi=100)
        for name, (series, times) in runs.items():
            points = series.get(key, [])
            if not points:
                continue
            steps, values = zip(*points)
            by_step.plot(steps, values, label=name, linewidth=1.2)
            known = sorted(times)
            seconds = [times[max(s for s in known if s <= step)] / 60 for step in steps]
            by_time.plot(seconds, values, label=name, linewidth=1.2)
        for axes, label in ((by_step, "iteration"), (by_time, "minutes of training")):
            axes.set_xlabel(label)
            axes.grid(alpha=0.3)
            if key.endswith("_ratio"):
                axes.axhline(1.0, color="grey", linestyle="--", linewidth=0.8)
                axes.axhline(2.0, color="red", linestyle=":", linewidth=0.8)
        by_step.legend(fontsize=8)
        figure.suptitle(title, fontsize=10)
        figure.tight_layout()
        path = os.path.join(args.out, key.replace("stats/", "").replace("/", "_") + ".png")
        figure.savefig(path)
        plt.close(figure)
        print(path)


if __name__ == "__main__":
    main()
