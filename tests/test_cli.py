import os

import pytest
from click.testing import CliRunner

from tinyvideo_mx.cli import main


def test_help_lists_the_commands():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in ("train", "sample", "export", "serve", "stabilize", "launch", "evaluate", "finetune-classifier",
                    "import-t7", "convert-c3d", "doctor", "report"):
        assert f"  {command} " in result.output


def test_train_sample_export_resume_from_the_command_line(tmp_path):
    runner = CliRunner()
    run = str(tmp_path / "run")
    result = runner.invoke(main, ["train", "--preset", "tiny", "--out", run, "--quiet", "--iterations", "2"])
    assert result.exit_code == 0, result.output
    assert "trained 2 iterations" in result.output
    result = runner.invoke(main, ["train", "--resume", run, "--iterations", "3", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "trained 3 iterations" in result.output and os.path.isdir(os.path.join(run, "ckpt-00000003"))
    out = str(tmp_path / "samples")
    result = runner.invoke(main, ["sample", run, "--out", out, "-n", "2", "--seed", "4"])
    assert result.exit_code == 0, result.output
    # 4 grids x (GIF + MP4) + background grid PNG + per clip: video GIF + MP4, mask GIF, background PNG
    assert result.output.startswith(f"wrote {4 * 2 + 1 + 2 * 4} files to {out} (mean mask ")
    assert os.path.exists(os.path.join(out, "clips", "0001_video.mp4"))
    result = runner.invoke(main, ["export", run, "--out", str(tmp_path / "exp" / "g")])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == str(tmp_path / "exp" / "g-symbol.json")


def test_bad_inputs_end_with_one_clear_line(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["train", "--data", str(tmp_path / "nope.txt"), "--out", str(tmp_path / "r"), "--quiet"])
    assert result.exit_code == 1
    assert result.output == f"Error: {tmp_path / 'nope.txt'}: list file not found\n"
    result = runner.invoke(main, ["sample", str(tmp_path)])
    assert result.exit_code == 1
    assert "no checkpoint found" in result.output
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "list.txt").write_text("a.jpg\nb.jpg\n")
    result = runner.invoke(main, ["train", "--preset", "tiny", "--data", str(bad / "list.txt"), "--out", str(tmp_path / "r2"),
                                  "--quiet", "--max-bad", "1", "--batch-size", "2"])
    assert result.exit_code == 1
    last = result.output.splitlines()[-1]       # after one warning line per bad clip
    assert last.startswith("Error: 2 unusable clips, more than the limit of 1 (--max-bad); the last one: ")
    assert last.endswith(": file not found")


def test_horovod_flag_and_another_kvstore_contradict(tmp_path):
    result = CliRunner().invoke(main, ["train", "--preset", "tiny", "--horovod", "--kvstore", "dist_sync",
                                       "--out", str(tmp_path), "--quiet"])
    assert result.exit_code == 2
    assert "Error: --horovod and --kvstore dist_sync contradict each other" in result.output


@pytest.mark.parametrize("option", [["--mode-seeking", "1"], ["--mask-penalty-until", "10"], ["--background-size", "4"]])
def test_unconditional_options_are_refused_for_the_conditional_model(option, tmp_path):
    result = CliRunner().invoke(main, ["train", "--preset", "tiny", "--conditional", *option,
                                       "--out", str(tmp_path / "r"), "--quiet"])
    assert result.exit_code == 1
    assert result.output == ("Error: minibatch_std, mode_seeking, temporal_padding, mask_bias, mask_penalty_until and "
                             "background_size are options of the unconditional model\n")
    assert not (tmp_path / "r").exists()


def test_regulariser_weights_reach_the_run_configuration(tmp_path):
    import json
    run = tmp_path / "r"
    result = CliRunner().invoke(main, ["train", "--preset", "tiny", "--iterations", "1", "--mask-penalty", "0.3",
                                       "--mode-seeking", "2", "--mask-bias", "-2", "--mask-penalty-until", "500",
                                       "--background-size", "4", "--out", str(run), "--quiet"])
    assert result.exit_code == 0, result.output
    saved = json.loads((run / "config.json").read_text())
    assert (saved["mask_penalty"], saved["mode_seeking"], saved["mask_bias"], saved["mask_penalty_until"],
            saved["background_size"]) == (0.3, 2.0, -2.0, 500, 4)
    result = CliRunner().invoke(main, ["train", "--preset", "tiny", "--background-size", "5", "--out", str(tmp_path / "b")])
    assert result.exit_code == 1 and result.output == "Error: background_size must divide the frame size 16, got 5\n"
    assert not (tmp_path / "b").exists()
    result = CliRunner().invoke(main, ["train", "--preset", "tiny", "--mask-bias", "nan", "--out", str(tmp_path / "n")])
    assert result.exit_code == 1 and result.output == "Error: mask_bias must be a finite number, got nan\n"
    assert not (tmp_path / "n").exists()
    result = CliRunner().invoke(main, ["train", "--preset", "tiny", "--mask-penalty", "-1", "--out", str(tmp_path / "s")])
    assert result.exit_code == 2 and "Invalid value for '--mask-penalty'" in result.output
    assert not (tmp_path / "s").exists()
    result = CliRunner().invoke(main, ["train", "--preset", "tiny", "--mask-penalty-until", "0", "--out", str(tmp_path / "u")])
    assert result.exit_code == 2 and "Invalid value for '--mask-penalty-until'" in result.output
    assert not (tmp_path / "u").exists()

    from tinyvideo_mx.config import make_config
    from tinyvideo_mx.errors import SettingError
    with pytest.raises(SettingError, match=r"^mask_penalty must be >= 0, got -0.5$"):
        make_config("tiny", mask_penalty=-0.5)
    with pytest.raises(SettingError, match=r"^mask_penalty_until must be >= 1, got 0$"):
        make_config("tiny", mask_penalty_until=0)


@pytest.mark.parametrize("settings, message", [
    (dict(lr_end=0.0), "lr_end needs lr_fall_from (the iteration the learning rates start to fall at)"),
    (dict(lr_end=0.0, d_lr_end=0.0), "lr_end and d_lr_end need lr_fall_from (the iteration the learning rates start to fall at)"),
    (dict(lr_fall_until=3), "lr_fall_until needs lr_fall_from (the iteration the learning rates start to fall at)"),
    (dict(lr_fall_from=2), "lr_fall_from needs lr_end or d_lr_end (the rate G's or D's learning rate falls to)"),
    (dict(lr_fall_from=2, lr_end=-1e-4), "lr_end must be a finite number >= 0, got -0.0001"),
    (dict(lr_fall_from=2, d_lr_end=float("nan")), "d_lr_end must be a finite number >= 0, got nan"),
    (dict(lr_fall_from=3, lr_fall_until=3, lr_end=0.0), "lr_fall_until (3) must come after lr_fall_from (3)"),
    (dict(lr_fall_from=4, lr_end=0.0), "lr_fall_from (4) must come before the run's end (iteration 4), or give lr_fall_until"),
])
def test_falling_learning_rates_are_checked(settings, message):
    from tinyvideo_mx.config import make_config
    from tinyvideo_mx.errors import SettingError
    with pytest.raises(SettingError) as error:
        make_config("tiny", **settings)
    assert str(error.value) == message


def test_falling_rates_are_logged_and_must_start_before_the_runs_end(tmp_path):
    """--lr-fall-from 1 --lr-end 0 in a 4-iteration run: G's rate, as logged, falls by thirds from step 1 and
    D's stays. Without --iterations the run's length (100 epochs) is known once the data is: the start is
    checked there, before anything is trained, and the folder's lock is given back."""
    result = CliRunner().invoke(main, ["train", "--preset", "tiny", "--iterations", "4", "--lr-fall-from", "1",
                                       "--lr-end", "0", "--quiet", "--out", str(tmp_path / "ok")])
    assert result.exit_code == 0, result.output
    import json
    with open(tmp_path / "ok" / "metrics.jsonl") as f:      # logged after iterations 1-4 (steps 0-3)
        rates = [(r["lr_g"], r["lr_d"]) for r in map(json.loads, f) if "lr_g" in r]
    assert rates == [(2e-4, 2e-4), (2e-4, 2e-4), (pytest.approx(2e-4 * 2 / 3), 2e-4), (pytest.approx(2e-4 / 3), 2e-4)]
    import dataclasses

    from tinyvideo_mx.config import make_config
    from tinyvideo_mx.errors import SettingError
    from tinyvideo_mx.training import GanTraining
    no_length = dataclasses.replace(make_config("tiny"), iterations=None, lr_fall_from=400, lr_end=0.0)
    with pytest.raises(SettingError) as error:     # 16 built-in clips, batch 4: 100 epochs of 4 batches
        GanTraining(no_length, str(tmp_path / "e"), progress=False)
    assert str(error.value) == "lr_fall_from (400) must come before the run's end (iteration 400), or give lr_fall_until"
    from tinyvideo_mx import run_folder
    assert not os.path.exists(run_folder.owner_lock(str(tmp_path / "e")))     # released: the next run starts clean
    result = CliRunner().invoke(main, ["train", "--preset", "tiny", "--quiet", "--out", str(tmp_path / "e")])
    assert result.exit_code == 0 and "took over" not in result.output, result.output


def test_every_train_option_but_the_commands_own_is_a_run_setting():
    """train's options go straight into TrainConfig: each is named as the field it sets, except the few the
    command itself uses (where to write, resuming, output)."""
    import dataclasses
    import inspect

    from tinyvideo_mx import cli
    from tinyvideo_mx.config import TrainConfig
    own = set(inspect.signature(cli._train).parameters) - {"settings"}
    options = {p.name for p in main.commands["train"].params}
    assert own < options
    assert options - own <= {f.name for f in dataclasses.fields(TrainConfig)}


def test_checkpoints_and_logs_cannot_be_switched_off():
    """A run always writes its final checkpoint: 0 is refused for checkpoint_every (and log_every) in one
    line, where sample_every and fvd_every take 0 for never."""
    from tinyvideo_mx.config import make_config
    from tinyvideo_mx.errors import SettingError
    with pytest.raises(SettingError, match=r"^checkpoint_every must be a whole number >= 1, got 0$"):
        make_config("tiny", checkpoint_every=0)
    with pytest.raises(SettingError, match=r"^log_every must be a whole number >= 1, got 0$"):
        make_config("tiny", log_every=0)
    assert make_config("tiny", sample_every=0).sample_every == 0


def test_a_warning_while_a_progress_bar_is_drawn_gets_a_line_of_its_own(capsys):
    """The commands' console lines (the package's and the stabiliser's loggers) go through tqdm: the bar steps
    aside, so the line starts at the left margin instead of after the bar's text."""
    import logging
    import sys

    from tqdm import tqdm

    from tinyvideo_mx.cli import _setup_logging
    _setup_logging()
    bar = tqdm(total=4, unit="video", desc="stabilize", file=sys.stderr)
    bar.update(1)
    logging.getLogger("stabilize.runner").warning("skipped bad.mp4: cannot be decoded as a video")
    logging.getLogger("tinyvideo_mx.data.iterator").warning("bad clip skipped: a.jpg: not an image")
    bar.update(1)
    bar.close()
    err = capsys.readouterr().err
    for message in ("WARNING skipped bad.mp4: cannot be decoded as a video", "WARNING bad clip skipped: a.jpg: not an image"):
        lines = [line for line in err.split("\n") if message in line]
        assert len(lines) == 1, err
        assert lines[0].split("\r")[-1] == message      # what the terminal shows of that line, the bar cleared
    assert "2/4" in err.split("not an image")[-1]     # the bar is drawn again, below
