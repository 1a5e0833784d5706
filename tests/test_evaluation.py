"""FVD and IS: the formulas against closed forms, and the whole path with random network weights."""
import json

import mxnet as mx
import numpy as np
import pytest

from tinyvideo_mx.errors import FileProblem
from tinyvideo_mx.metrics import evaluation, feature_statistics, frechet_distance, inception_score, video_networks
from tinyvideo_mx.training import GanTraining

from support.helpers import tiny_config


def test_frechet_distance_of_diagonal_gaussians_matches_the_closed_form():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    var1, var2 = rng.uniform(0.5, 2, 5), rng.uniform(0.5, 2, 5)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(var1 + var2 - 2 * np.sqrt(var1 * var2))
    assert frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2)) == pytest.approx(expected, rel=1e-10)
    # A rotated pair (same rotation for both: the trace term is rotation invariant).
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    s1, s2 = q @ np.diag(var1) @ q.T, q @ np.diag(var2) @ q.T
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)
    assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0, abs=1e-9)


def test_feature_statistics_are_mean_and_unbiased_covariance():
    x = np.array([[1.0, 2.0], [3.0, 0.0], [5.0, 4.0]])
    mu, sigma = feature_statistics(x)
    np.testing.assert_allclose(mu, [3.0, 2.0])
    np.testing.assert_allclose(sigma, [[4.0, 2.0], [2.0, 4.0]])
    with pytest.raises(ValueError, match=r"need at least 2 feature vectors of shape \(N, D\), got \(1, 2\)"):
        feature_statistics(x[:1])


def test_inception_score_hand_computed_cases():
    assert inception_score(np.full((6, 4), 0.25)) == (pytest.approx(1.0), 0.0)     # uniform classifier: 1
    assert inception_score(np.eye(4))[0] == pytest.approx(4.0)                      # confident, balanced: K
    p = np.array([[0.9, 0.1], [0.2, 0.8]])
    marginal = p.mean(axis=0)
    expected = np.exp(np.mean([(row * np.log(row / marginal)).sum() for row in p]))
    assert inception_score(p)[0] == pytest.approx(expected, rel=1e-9)
    mean, std = inception_score(np.concatenate([np.eye(2), np.full((2, 2), 0.5)]), splits=2)
    assert (mean, std) == (pytest.approx(1.5), pytest.approx(0.5))


@pytest.fixture(scope="module")
def small_i3d():
    """Random-weight I3D with 16 logits on 32-px inputs: cheap, and a fixed function of the clips."""
    mx.random.seed(0)
    return video_networks.i3d(classes=16, size=32, batch=8)


def clips(n, seed=0):
    from tinyvideo_mx.data import synthetic
    frames = np.stack([synthetic.clip(seed, i, frames=16, size=32) for i in range(n)])   # N T H W C uint8
    return frames.transpose(0, 4, 1, 2, 3).astype(np.float32) / 127.5 - 1


def test_fvd_of_real_against_itself_is_zero_and_grows_with_perturbation(small_i3d):
    real = clips(48)
    mu, sigma = feature_statistics(small_i3d.outputs([real[:24], real[24:]]))
    rng = np.random.default_rng(1)
    distances = []
    for noise in (0.0, 0.1, 0.3, 0.6):
        perturbed = np.clip(real + noise * rng.standard_normal(real.shape).astype(np.float32), -1, 1)
        distances.append(frechet_distance(*feature_statistics(small_i3d.outputs([perturbed])), mu, sigma))
    assert abs(distances[0]) < 1e-6 * max(distances)
    assert distances == sorted(distances) and distances[1] > 0


def test_preprocessing_follows_the_protocol():
    net = video_networks.VideoNetwork(mx.gluon.nn.HybridSequential(),
                                      video_networks.Protocol(frames=2, size=4, normalisation="imagenet"))
    x = np.zeros((1, 3, 3, 2, 2), np.float32)          # mid-grey (0 in [-1, 1])
    out = net.preprocess(x)
    assert out.shape == (1, 3, 2, 4, 4)
    np.testing.assert_allclose(out[0, :, 0, 0, 0], (0.5 - video_networks.IMAGENET_MEAN) / video_networks.IMAGENET_STD, rtol=1e-6)
    caffe = video_networks.VideoNetwork(net.net, video_networks.Protocol(frames=2, size=2, normalisation="caffe"))
    x[:, 0] = 1.0                                      # pure red
    np.testing.assert_allclose(caffe.preprocess(x)[0, :, 0, 0, 0], [127.5 - 104, 127.5 - 117, 255 - 123])   # B, G, R
    with pytest.raises(ValueError, match="clips have 3 frames; the protocol needs 16"):
        video_networks.VideoNetwork(net.net, video_networks.PROTOCOL["fvd"]).preprocess(x)


def test_inception_score_of_a_uniform_c3d_is_one():
    net = video_networks.c3d(classes=7, batch=2)
    net.net.fc8.weight.set_data(mx.nd.zeros(net.net.fc8.weight.shape))
    net.net.fc8.bias.set_data(mx.nd.zeros(net.net.fc8.bias.shape))
    probabilities = video_networks.softmax(net.outputs([clips(3)]))
    assert probabilities.shape == (3, 7)
    assert inception_score(probabilities) == (pytest.approx(1.0, abs=1e-9), 0.0)


def test_missing_or_mismatched_weights_name_the_file(tmp_path):
    with pytest.raises(FileProblem) as err:
        video_networks.i3d(weights=str(tmp_path / "nope.params"), classes=4)
    assert str(err.value).startswith(f"{tmp_path / 'nope.params'}: cannot load I3D weights into GluonCV's definition: ")
    other = mx.gluon.nn.Dense(3, in_units=2)
    other.initialize()
    other.save_parameters(str(tmp_path / "dense.params"))
    with pytest.raises(FileProblem, match="dense.params: cannot load C3D weights"):
        video_networks.c3d(weights=str(tmp_path / "dense.params"))


def test_evaluate_a_checkpoint_end_to_end(tmp_path, small_i3d, tiny_model):
    """FVD and IS of a trained tiny model against its data, with a reused real-statistics cache."""
    from tinyvideo_mx.checkpoint import open_checkpoint
    from tinyvideo_mx.data.sources import resolve_data_list
    run_dir = str(tiny_model / "run")
    data = resolve_data_list(open_checkpoint(run_dir).config)
    uniform = video_networks.c3d(classes=5, batch=4)
    cache = str(tmp_path / "real.npz")
    result = evaluation.evaluate(run_dir, data, i3d=small_i3d, c3d=uniform, n=8, splits=2,
                                 out=str(tmp_path / "metrics.json"), real_cache=cache)
    assert json.load(open(tmp_path / "metrics.json")) == json.loads(json.dumps(result))
    assert result["fvd"]["value"] > 0 and result["fvd"]["real_clips"] == 8 and result["fvd"]["generated_clips"] == 8
    assert result["fvd"]["protocol"] == {"frames": 16, "size": 32, "normalisation": "imagenet"}
    assert 1.0 <= result["inception_score"]["mean"] < 5 and result["inception_score"]["splits"] == 2
    again = evaluation.evaluate(run_dir, data, i3d=small_i3d, n=8, real_cache=cache)
    assert again["fvd"]["value"] == pytest.approx(result["fvd"]["value"], rel=1e-6)   # same z, cached real stats
    with pytest.raises(ValueError, match="nothing to evaluate: give --stats, I3D weights"):
        evaluation.evaluate(run_dir, data)


def test_evaluate_command_reads_weights_from_files(tmp_path):
    from click.testing import CliRunner

    from tinyvideo_mx.cli import main
    runner = CliRunner()
    run = str(tmp_path / "run")
    assert runner.invoke(main, ["train", "--preset", "tiny", "--out", run, "--quiet", "--iterations", "1"]).exit_code == 0
    mx.random.seed(3)
    weights = str(tmp_path / "i3d.params")
    video_networks.i3d().net.save_parameters(weights)        # stands in for converted Kinetics weights
    result = runner.invoke(main, ["evaluate", run, "--i3d-weights", weights, "-n", "3", "--out", str(tmp_path / "m.json")])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("FVD ") and "(3 generated vs 3 real clips)" in result.output
    assert json.load(open(tmp_path / "m.json"))["fvd"]["protocol"] == {"frames": 16, "size": 224, "normalisation": "imagenet"}
    result = runner.invoke(main, ["evaluate", run, "--c3d-weights", str(tmp_path / "missing.params")])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {tmp_path / 'missing.params'}: cannot load C3D weights into GluonCV's definition: ")


def test_fvd_during_training_is_logged_with_the_other_scalars(tmp_path, small_i3d, monkeypatch):
    weights = tmp_path / "i3d.params"
    weights.write_bytes(b"")                  # the path is handed to video_networks.i3d, replaced below
    asked = []

    def fake_i3d(path, normalisation, ctx):
        asked.append((path, normalisation))
        return small_i3d                      # 32-px random-weight I3D: the real one takes 224-px clips
    monkeypatch.setattr(video_networks, "i3d", fake_i3d)
    cfg = tiny_config(iterations=4, fvd_every=2, fvd_i3d_weights=str(weights), fvd_samples=8, sample_every=0,
                      checkpoint_every=4)
    GanTraining(cfg, str(tmp_path / "run"), progress=False).run()
    rows = [json.loads(line) for line in open(tmp_path / "run" / "metrics.jsonl")]
    fvd = [(r["iteration"], r["fvd"]) for r in rows if "fvd" in r]
    assert [i for i, _ in fvd] == [2, 4] and all(v > 0 for _, v in fvd)
    assert asked == [(str(weights), "imagenet")]                      # built once
    assert (tmp_path / "run" / "fvd_real_stats.npz").exists()
    with pytest.raises(ValueError, match=r"needs I3D weights \(--fvd-i3d-weights FILE\)"):
        tiny_config(fvd_every=2)


def test_chainer_c3d_converts_to_gluoncv(tmp_path):
    from click.testing import CliRunner

    from tinyvideo_mx.cli import main
    from tinyvideo_mx.metrics import convert
    reference = video_networks.c3d(classes=6)
    params = list(reference.net.collect_params().values())
    arrays = {}
    for link, w, b in zip(convert.CHAINER_C3D_LINKS, params[0::2], params[1::2]):
        arrays[f"predictor/{link}/W"], arrays[f"predictor/{link}/b"] = w.data().asnumpy(), b.data().asnumpy()
    np.savez(tmp_path / "c3d.npz", **arrays)
    result = CliRunner().invoke(main, ["convert-c3d", str(tmp_path / "c3d.npz"), "--out", str(tmp_path / "c3d.params")])
    assert result.exit_code == 0, result.output
    assert result.output == (f"wrote {tmp_path / 'c3d.params'} (6 classes): use evaluate --c3d-weights "
                             f"{tmp_path / 'c3d.params'} --c3d-classes 6\n")
    converted = video_networks.c3d(str(tmp_path / "c3d.params"), classes=6)
    for a, b in zip(converted.net.collect_params().values(), params):
        np.testing.assert_array_equal(a.data().asnumpy(), b.data().asnumpy(), err_msg=b.name)
    del arrays["predictor/fc7/b"]
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(FileProblem, match="bad.npz: not a Chainer C3D: missing fc7/b"):
        convert.chainer_c3d(str(tmp_path / "bad.npz"), str(tmp_path / "x.params"))


def test_conditional_fvd_compares_futures_of_real_first_frames(tmp_path, small_i3d):
    """For the image-to-video model the generated set is the futures of the real clips' first frames."""
    cfg = tiny_config(model="conditional", ngf=4, ndf=4, iterations=1, sample_every=0, checkpoint_every=1)
    run = GanTraining(cfg, str(tmp_path / "run"), progress=False).run()
    from tinyvideo_mx.data.sources import real_chunks, resolve_data_list
    data = resolve_data_list(run.config)
    real = next(real_chunks(data, 4, run.config))
    futures = next(evaluation.generated_chunks(run.G, run.config, 4, 0, real=[real]))
    assert futures.shape == real.shape
    result = evaluation.evaluate(str(tmp_path / "run"), data, i3d=small_i3d, n=4)
    assert result["fvd"]["generated_clips"] == result["fvd"]["real_clips"] == 4 and result["fvd"]["value"] > 0
