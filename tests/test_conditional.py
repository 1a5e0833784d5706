import os

import cv2
import mxnet as mx
import numpy as np
import pytest
from click.testing import CliRunner
from mxnet import nd

from tinyvideo_mx.cli import main
from tinyvideo_mx.conditional import sample_conditional
from tinyvideo_mx.data.image_input import ImageError, load_image
from tinyvideo_mx.generation import media
from tinyvideo_mx.generation.export import export_generator
from tinyvideo_mx.generation.inference import OUTPUTS, load_generator, run_generator
from tinyvideo_mx.models.conditional_networks import ConditionalDiscriminator, ConditionalGenerator
from tinyvideo_mx.models.factory import prepare
from tinyvideo_mx.models.layers import count_trainable
from tinyvideo_mx.serving.contract import import_generator
from tinyvideo_mx.training import GanTraining, losses

from support.helpers import tiny_config


def test_full_size_parameter_counts_match_main_conditional():
    G = prepare(ConditionalGenerator(), [mx.cpu()], hybridize=False)
    D = prepare(ConditionalDiscriminator(ndf=128), [mx.cpu()], hybridize=False)
    assert count_trainable(G) == 68_216_455      # the fused 128->4 head has the 128->3 + 128->1 count
    assert count_trainable(D) == 44_135_810
    assert count_trainable(G.encoder) == 11_021_696
    assert G.foreground[0].weight.shape == (1024, 1024, 2, 1, 1)


def test_shapes_and_optional_noise():
    G = prepare(ConditionalGenerator(ngf=4, frames=16, size=32), [mx.cpu()], hybridize=True)
    video, fg, mask, bg = G(nd.random.uniform(-1, 1, (2, 3, 32, 32)))
    assert video.shape == (2, 3, 16, 32, 32) and mask.shape == (2, 1, 16, 32, 32) and bg.shape == (2, 3, 32, 32)
    noisy = prepare(ConditionalGenerator(ngf=4, frames=16, size=32, noise=5), [mx.cpu()], hybridize=False)
    image = nd.random.uniform(-1, 1, (1, 3, 32, 32))
    a = noisy(image, nd.array(np.zeros((1, 5))))[0].asnumpy()
    b = noisy(image, nd.array(np.ones((1, 5))))[0].asnumpy()
    assert not np.allclose(a, b)                 # z changes the future


def test_first_frame_l1_on_a_hand_made_case():
    video = np.zeros((1, 3, 2, 2, 2), np.float32)
    video[0, :, 0] = 0.5                         # frame 1 is 0.5 everywhere; frame 2 must not matter
    video[0, :, 1] = 9.0
    image = np.zeros((1, 3, 2, 2), np.float32)
    image[0, 0] = 1.0                            # |0.5 - 1| on channel 0, |0.5 - 0| on channels 1, 2
    value = losses.first_frame_l1(nd.array(video), nd.array(image), 10.0).asscalar()
    assert value == pytest.approx(10 * 0.5)


def test_training_reduces_the_first_frame_l1(tmp_path):
    """A short overfit on 4 clips: the frame-1 reconstruction error falls markedly."""
    cfg = tiny_config(model="conditional", ngf=8, ndf=8, frames=16, size=16, batch_size=4, iterations=200,
                      synthetic_clips=4, sample_every=0, checkpoint_every=200, log_every=1)
    run = GanTraining(cfg, str(tmp_path), progress=False)
    l1 = [run.step(run.next_batch())["penalty"] for _ in range(cfg.iterations)]   # 10 * mean |frame 1 error|
    run.data.close()
    first, last = np.mean(l1[:10]), np.mean(l1[-10:])
    assert last < 0.5 * first, (first, last)      # measured: 4.4 -> 1.6


@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("crun")
    cfg = tiny_config(model="conditional", ngf=4, ndf=4, iterations=2, sample_every=2, checkpoint_every=2)
    GanTraining(cfg, str(run_dir), progress=False).run()
    return str(run_dir)


def test_sampling_from_png_and_odd_sized_jpeg(conditional_run, tmp_path):
    rng = np.random.default_rng(0)
    cv2.imwrite(str(tmp_path / "a.png"), rng.integers(0, 255, (50, 90, 3), dtype=np.uint8))
    cv2.imwrite(str(tmp_path / "b.jpg"), rng.integers(0, 255, (77, 33, 3), dtype=np.uint8))
    out = tmp_path / "out"
    summary = sample_conditional(conditional_run, [str(tmp_path / "a.png"), str(tmp_path / "b.jpg")], str(out))
    assert summary["clips"] == {"0000": str(tmp_path / "a.png"), "0001": str(tmp_path / "b.jpg")}
    assert media.read_video(str(out / "clips" / "0001_video.mp4")).shape == (16, 32, 32, 3)
    assert os.path.exists(out / "grid_video.gif") and os.path.exists(out / "clips" / "0000_background.png")


def test_image_loading_crops_the_centre_and_averages():
    image = np.zeros((40, 80, 3), np.uint8)
    image[:, 20:60] = 255                         # the centre 40x40 square is white
    path = "/tmp/_tvmx_centre.png"
    cv2.imwrite(path, image)
    loaded = load_image(path, 8)
    os.remove(path)
    assert loaded.shape == (3, 8, 8) and np.allclose(loaded, 1.0)


def test_unreadable_images_are_clear_errors(tmp_path):
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(ImageError, match=r"notes.txt: not a readable image$"):
        load_image(str(tmp_path / "notes.txt"), 16)
    with pytest.raises(ImageError, match=r"missing.png: file not found$"):
        load_image(str(tmp_path / "missing.png"), 16)


def test_cli_conditional_sample_error_and_export(conditional_run, tmp_path):
    (tmp_path / "x.txt").write_text("text")
    result = CliRunner().invoke(main, ["sample", conditional_run, "--conditional", "--image", str(tmp_path / "x.txt")])
    assert result.exit_code == 1 and result.output == f"Error: {tmp_path / 'x.txt'}: not a readable image\n"
    export_generator(conditional_run, str(tmp_path / "cg"))
    net = import_generator(str(tmp_path / "cg"))
    G, config = load_generator(conditional_run)
    images = np.random.default_rng(1).uniform(-1, 1, (2, 3, config.size, config.size)).astype(np.float32)
    live = run_generator(G, [images])
    for key, out in zip(OUTPUTS, net(nd.array(images))):
        np.testing.assert_allclose(out.asnumpy(), live[key], atol=1e-6, err_msg=key)


def test_conditional_training_on_two_contexts_resumes_exactly(tmp_path):
    cfg = dict(model="conditional", ngf=4, ndf=4, batch_size=4, ctx="cpu0,cpu1", sample_every=0, checkpoint_every=2)
    straight = GanTraining(tiny_config(iterations=3, **cfg), str(tmp_path / "a"), progress=False).run()
    GanTraining(tiny_config(iterations=2, **cfg), str(tmp_path / "b"), progress=False).run()
    resumed = GanTraining.resume(str(tmp_path / "b"), progress=False, iterations=3).run()
    for (name, a), b in zip(straight.G.collect_params().items(), resumed.G.collect_params().values()):
        np.testing.assert_array_equal(a.data().asnumpy(), b.data().asnumpy(), err_msg=name)
