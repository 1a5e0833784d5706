"""Weight-free quality statistics on constructed clips, against hand-computed values; their place in
`sample`, `evaluate --stats`, the training logs and `tinyvideo-mx report`."""
import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from tinyvideo_mx.cli import main
from tinyvideo_mx.metrics import clip_statistics as cs


def clips_from_unit(x):
    """[0, 1] values -> the networks' [-1, 1]."""
    return np.asarray(x, np.float32) * 2 - 1


def test_a_checkerboard_clip_scores_high_and_a_flat_one_zero():
    board = np.indices((8, 8)).sum(axis=0) % 2                     # 0/1 alternating pixels
    checker = clips_from_unit(np.broadcast_to(board, (2, 3, 4, 8, 8)))
    flat = clips_from_unit(np.full((2, 3, 4, 8, 8), 0.3))
    # every 2x2 window of a 0/1 board has response (1 - 0 - 0 + 1) / 4 = 0.5 in absolute value
    assert cs.checkerboard(checker) == pytest.approx(0.5)
    assert cs.checkerboard(flat) == 0.0
    ramp = clips_from_unit(np.broadcast_to(np.linspace(0, 1, 8), (2, 3, 4, 8, 8)))
    assert cs.checkerboard(ramp) == pytest.approx(0.0, abs=1e-7)  # a smooth gradient has none


def test_flicker_and_motion_by_hand():
    static = clips_from_unit(np.random.default_rng(0).random((2, 3, 1, 8, 8)).repeat(6, axis=2))
    assert cs.flicker(static) == 0.0 and cs.motion(static) == 0.0
    blink = np.zeros((1, 3, 4, 8, 8), np.float32)
    blink[:, :, 1::2] = 1.0                                          # black, white, black, white
    assert cs.flicker(clips_from_unit(blink)) == pytest.approx(1.0)
    square = np.zeros((1, 3, 3, 8, 8), np.float32)
    for t in range(3):                                               # a 2x2 square moving right by 2 px
        square[:, :, t, 2:4, 2 * t:2 * t + 2] = 1.0
    # per frame pair, 4 pixels vanish and 4 appear: 8 of 64 pixels change
    assert cs.motion(clips_from_unit(square)) == pytest.approx(8 / 64)
    assert cs.flicker(clips_from_unit(square)) == pytest.approx(8 / 64)


def test_real_against_real_is_about_one_and_noise_is_far():
    rng = np.random.default_rng(1)
    base = np.linspace(0.2, 0.8, 16)[None, None, None, :, None] * np.linspace(0.5, 1, 16)   # a smooth scene
    real = clips_from_unit(np.clip(base + rng.normal(0, 0.01, (480, 3, 8, 16, 16)), 0, 1))
    rows = {r["statistic"]: r for r in cs.compare(real[320:], real[:320])}       # 160 generated, 320 real
    for name in ("checkerboard", "flicker", "motion", "channel_mean_r", "channel_std_g", "colour_std",
                 "end_contrast", "diversity"):
        assert rows[name]["ratio"] == pytest.approx(1.0, abs=0.1), name
    assert rows["frechet_pixels"]["ratio"] < 2 and rows["frechet_pixels"]["note"] is None
    noise = clips_from_unit(rng.random((160, 3, 8, 16, 16)))
    rows_noise = {r["statistic"]: r for r in cs.compare(noise, real)}
    assert rows_noise["checkerboard"]["ratio"] > 3
    assert rows_noise["frechet_pixels"]["ratio"] > 10 * rows["frechet_pixels"]["ratio"]


def test_colour_spread_and_colour_std_by_hand():
    two = np.zeros((2, 3, 4, 8, 8))
    two[0], two[1] = 0.2, 0.6                       # two uniform clips: per-clip means 0.2 and 0.6
    assert cs.colour_spread(clips_from_unit(two)) == pytest.approx(0.2, abs=1e-6)
    assert cs.colour_spread(clips_from_unit(two[:1])) == 0.0
    assert cs.colour_std(clips_from_unit(two)) == pytest.approx(0.0, abs=1e-6)
    halves = np.zeros((2, 3, 4, 8, 8))
    halves[0, ..., :4] = 1.0                        # one clip half black, half white: std 0.5 in every colour
    assert cs.colour_std(clips_from_unit(halves)) == pytest.approx(0.25)     # averaged with a flat clip


def test_end_contrast_sees_faded_first_and_last_frames():
    stripes = np.where(np.arange(8) % 2, 1.0, -1.0)[None, None, None, None, :]        # +-1 along W
    amplitude = np.array([0.2, 0.4, 0.4, 0.2])[None, None, :, None, None]             # faded ends
    faded = 0.5 + amplitude * stripes * np.ones((3, 3, 4, 8, 8))
    assert cs.end_contrast(clips_from_unit(faded)) == pytest.approx(0.5)
    steady = 0.5 + 0.4 * stripes * np.ones((3, 3, 4, 8, 8))
    assert cs.end_contrast(clips_from_unit(steady)) == pytest.approx(1.0)


def test_collapsed_and_too_few_clips_are_named_not_scored():
    """36 real clips and 20 grey ones (a generator 20 iterations old): the Frechet row refuses to be a
    ratio (18 clips per half cannot fit a Gaussian of 150 numbers); colour std and diversity say grey."""
    rng = np.random.default_rng(3)
    real = clips_from_unit(rng.random((36, 3, 1, 1, 1)) * np.ones((36, 3, 8, 16, 16))
                           + rng.normal(0, 0.05, (36, 3, 8, 16, 16)))
    grey = clips_from_unit(np.full((20, 3, 8, 16, 16), 0.5))
    rows = {r["statistic"]: r for r in cs.compare(grey, real)}
    assert rows["frechet_pixels"] == {"statistic": "frechet_pixels", "generated": None, "real": None, "ratio": None,
                                      "note": "needs 150 generated and 300 real clips (has 20 and 36): "
                                              "evaluate --stats --stats-clips 300"}
    assert rows["colour_std"]["ratio"] == 0.0 and rows["colour_spread"]["ratio"] == 0.0
    assert rows["diversity"]["generated"] == 0.0 and rows["diversity"]["note"].startswith("20 clips each; 20 real clips score ")
    assert rows["diversity"]["real"] > 0
    table = cs.format_rows(list(rows.values()))
    assert table[-1 - 0].startswith("frechet_pixels") and "(needs 150 generated and 300 real clips" in table[-1]


def test_mask_statistics_are_reported_for_generated_clips():
    mask = np.zeros((2, 1, 4, 8, 8), np.float32)
    mask[..., :4] = 0.9
    clips = clips_from_unit(np.random.default_rng(2).random((2, 3, 4, 8, 8)))
    values = cs.clip_statistics(clips, mask)
    assert values["mask_mean"] == pytest.approx(0.45) and values["mask_coverage"] == pytest.approx(0.5)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("stats") / "run"
    result = CliRunner().invoke(main, ["train", "--preset", "tiny", "--quiet", "--out", str(run), "--iterations", "4",
                                       "--sample-every", "2"])
    assert result.exit_code == 0, result.output
    return run


def test_training_logs_the_statistics_and_report_draws_them(trained_run):
    lines = [json.loads(line) for line in open(trained_run / "metrics.jsonl")]
    logged = [line for line in lines if "stats/checkerboard_ratio" in line]
    assert [line["iteration"] for line in logged] == [2, 4]
    assert all(line["stats/checkerboard"] >= 0 and 0 <= line["stats/mask_mean"] <= 1 for line in logged)
    assert all(line["stats/colour_spread_ratio"] >= 0 and line["stats/end_contrast_ratio"] > 0 for line in logged)
    # diversity: the 4 grid clips' nearest-neighbour distance over that of the first 4 training clips
    from tinyvideo_mx.config import TrainConfig
    from tinyvideo_mx.data.sources import training_clips
    config = TrainConfig.from_dict(json.loads((trained_run / "config.json").read_text()))
    real_diversity = cs.nearest_neighbour_distance(training_clips(config, 256)[:4])
    assert all(line["stats/diversity_ratio"] == pytest.approx(line["stats/diversity"] / real_diversity, rel=1e-6)
               for line in logged)
    result = CliRunner().invoke(main, ["report", str(trained_run)])
    assert result.exit_code == 0, result.output
    page = (trained_run / "report.html").read_text()
    assert page.count('class="curve"') == 6 and page.count("data:image/gif;base64,") == 4     # 2 grids x (video, mask)
    assert 'alt="Learning rates (Adam; constant unless --lr-fall-from)"' in page
    assert "http://" not in page and '"g_step": "reuse"' in page


def test_sample_prints_the_statistics_and_evaluate_stats_writes_them(trained_run, tmp_path):
    result = CliRunner().invoke(main, ["sample", str(trained_run), "--out", str(tmp_path / "s"), "-n", "8"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[1].startswith("weight-free statistics of these 8 clips against the training clips")
    assert lines[2].split() == ["statistic", "generated", "real", "ratio"]
    assert [line.split()[0] for line in lines[3:]] == list(cs.STATISTICS) + ["diversity", "frechet_pixels",
                                                                           "mask_mean", "mask_coverage"]
    summary = json.load(open(tmp_path / "s" / "summary.json"))
    assert summary["statistics"][0]["statistic"] == "checkerboard"
    out = tmp_path / "metrics.json"
    result = CliRunner().invoke(main, ["evaluate", str(trained_run), "--stats", "--stats-clips", "16", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "weight-free statistics, 16 generated vs 16 real clips:" in result.output
    rows = json.load(open(out))["statistics"]["rows"]
    assert {r["statistic"] for r in rows} >= {"checkerboard", "flicker", "motion", "frechet_pixels"}
    assert os.path.exists(trained_run / "tensorboard")


def test_few_generated_clips_are_shown_beside_what_as_few_real_clips_score_by_chance():
    """40 real clips, each one flat colour: 20 of colour a, 20 of colour b. Two clips drawn from them are
    either alike (colour spread 0) or one of each (spread |a - b| / 2 per colour, the whole set's too):
    about half the draws each, so the 5-95 % band of the spread ratio is 0-1x. Flat clips have no
    checkerboard in any draw (0 / 0 reads 1x)."""
    a, b = np.array([0.2, 0.5, 0.9]), np.array([0.8, 0.1, 0.3])
    colours = np.concatenate([np.tile(a, (20, 1)), np.tile(b, (20, 1))])
    real = clips_from_unit(colours[:, :, None, None, None] * np.ones((40, 3, 4, 8, 8)))
    rows = {r["statistic"]: r for r in cs.compare(real[[0, 20]], real)}
    assert rows["colour_spread"]["ratio"] == pytest.approx(1.0)
    assert rows["colour_spread"]["note"] == "2 real clips score 0.00-1.00x (5-95 % of 200 draws)"
    assert rows["checkerboard"]["note"] == "2 real clips score 1.00-1.00x (5-95 % of 200 draws)"
    # the first 2 real clips are alike (nearest-neighbour distance 0): a draw of one of each scores inf
    assert rows["diversity"]["note"] == "2 clips each; 2 real clips score 1.00-infx (5-95 % of 200 draws)"
    assert "channel_mean_r" not in cs.BANDED and rows["channel_mean_r"]["note"] is None
    # as many generated clips as real ones: nothing to draw, no band
    assert cs.compare(real, real)[0]["note"] is None
    assert any("(2 real clips score 0.00-1.00x" in line for line in cs.format_rows(list(rows.values())))
