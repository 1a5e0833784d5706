"""finetune-classifier: the discriminator minus its last layer + dropout + a K-class head (main_ucf.lua)."""
import json
import os

import mxnet as mx
import numpy as np
import pytest
from click.testing import CliRunner

from tinyvideo_mx import classifier
from tinyvideo_mx.cli import main
from tinyvideo_mx.data import synthetic
from tinyvideo_mx.data.listfile import write_list
from tinyvideo_mx.training import GanTraining

from support.helpers import tiny_config


@pytest.fixture(scope="module")
def direction_lists(tmp_path_factory):
    """Motion-direction clips (4 classes): 96 to train on, 32 held out."""
    folder = tmp_path_factory.mktemp("directions")
    list_path = synthetic.labelled_dataset(str(folder), 128, frames=16, frame_height=32)
    lines = open(list_path).read().split("\n")[:-1]
    write_list(str(folder / "train.txt"), lines[:96])
    write_list(str(folder / "test.txt"), lines[96:])
    return str(folder / "train.txt"), str(folder / "test.txt")


def test_the_classifier_is_d_without_its_last_layer(tmp_path):
    run = GanTraining(tiny_config(iterations=1, sample_every=0, checkpoint_every=1), str(tmp_path), progress=False).run()
    net, _ = classifier.build_classifier(str(tmp_path), classes=5, ctx=mx.cpu())
    x = mx.nd.array(np.random.default_rng(0).uniform(-1, 1, (2, 3, 16, 16, 16)))
    assert net(x).shape == (2, 5)
    # The feature stages carry the trained D's weights (and BN statistics).
    np.testing.assert_array_equal(net.features(x).asnumpy(), run.D.features(x).asnumpy())
    assert net.head.weight.shape == (5, run.config.ndf * 8, 1, 1, 1)


def test_labels_are_one_based_as_the_original_or_zero_based():
    np.testing.assert_array_equal(classifier.zero_based([1, 3, 2], "l"), [0, 2, 1])
    np.testing.assert_array_equal(classifier.zero_based([0, 3], "l"), [0, 3])
    with pytest.raises(ValueError, match="l: negative class -1"):
        classifier.zero_based([-1, 2], "l")


def test_finetuning_learns_motion_directions(tmp_path, direction_lists):
    train, test = direction_lists
    result = classifier.finetune(train, str(tmp_path), test_list=test, iterations=60, batch_size=16, lr=1e-3,
                                 frames=16, size=32, ndf=8, frame_height=32, progress=False)
    assert result["classes"] == 4 and result["chance"] == 0.25
    assert result["test_accuracy"] >= 0.6, result        # chance is 0.25
    assert json.load(open(tmp_path / "result.json")) == json.loads(json.dumps(result))
    assert os.path.exists(tmp_path / "classifier.params")


def test_finetune_command_from_a_checkpoint(tmp_path, direction_lists):
    train, test = direction_lists
    runner = CliRunner()
    run = str(tmp_path / "run")
    result = runner.invoke(main, ["train", "--preset", "tiny", "--size", "32", "--frame-height", "32", "--data", train,
                                  "--out", run, "--quiet", "--iterations", "1"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["finetune-classifier", run, "--train-list", train, "--test-list", test,
                                  "--out", str(tmp_path / "cls"), "--iterations", "2", "--batch-size", "8", "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("4 classes, 2 iterations: train accuracy ")
    assert "test accuracy" in result.output and "(chance 0.250)" in result.output
    saved = json.load(open(tmp_path / "cls" / "result.json"))
    assert saved["source"].endswith("ckpt-00000001") and not saved["from_scratch"] and saved["bad_clips"] == 0
