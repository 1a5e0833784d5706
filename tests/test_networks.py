import cv2
import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, nd

from tinyvideo_mx.models.factory import prepare
from tinyvideo_mx.models.layers import BatchNorm3D, count_trainable
from tinyvideo_mx.models.networks import Discriminator, Generator, compose, first_kernel


def built(block):
    return prepare(block, [mx.cpu()], hybridize=False)


def test_full_size_parameter_counts_match_the_original():
    G, D = built(Generator()), built(Discriminator())
    assert count_trainable(G) == 16_245_383
    assert count_trainable(D) == 11_057_858
    # The oneDNN workaround fuses the 64->3 video head and the 64->1 mask head into one 64->4 layer:
    # 64*3*4*4*4 + 3 and 64*1*4*4*4 + 1 parameters before, 64*4*4*4*4 + 4 after: the same count.
    head = G.foreground[-1]
    assert head.weight.shape == (64, 4, 4, 4, 4) and head.bias.shape == (4,)
    assert head.weight.data().size + 4 == (64 * 3 * 64 + 3) + (64 * 1 * 64 + 1)
    assert count_trainable(G.foreground) == 12_667_716 and count_trainable(G.background) == 3_577_667


def test_output_shapes_tiny_and_full_kernels():
    G, D = built(Generator(nz=10, ngf=4, frames=16, size=32)), built(Discriminator(ndf=4, frames=16, size=32))
    video, fg, mask, bg = G(nd.random.normal(shape=(3, 10)))
    assert video.shape == (3, 3, 16, 32, 32) and fg.shape == (3, 3, 16, 32, 32)
    assert mask.shape == (3, 1, 16, 32, 32) and bg.shape == (3, 3, 32, 32)
    assert D(video).shape == (3, 2)
    assert first_kernel(32, 64) == (2, 4, 4)
    assert G.foreground[0].weight.shape == (10, 32, 1, 2, 2)


def test_bad_sizes_are_rejected_with_a_clear_message():
    with pytest.raises(ValueError, match="frames and size must be positive multiples of 16; got frames=20, size=64"):
        Generator(frames=20)


def test_composition_is_the_formula_on_hand_made_layers():
    rng = np.random.default_rng(0)
    f = rng.uniform(-1, 1, (2, 3, 4, 5, 5)).astype(np.float32)
    m = rng.uniform(0, 1, (2, 1, 4, 5, 5)).astype(np.float32)
    b = rng.uniform(-1, 1, (2, 3, 5, 5)).astype(np.float32)
    out = compose(nd, nd.array(f), nd.array(m), nd.array(b), 4).asnumpy()
    for n in range(2):
        for c in range(3):
            for t in range(4):
                expected = m[n, 0, t] * f[n, c, t] + (1 - m[n, 0, t]) * b[n, c]
                np.testing.assert_allclose(out[n, c, t], expected, rtol=1e-6, atol=1e-6)
    # gradients by hand for an upstream gradient g: dv/df = m, dv/dm = sum over colours of g (f - b),
    # dv/db = sum over frames of g (1 - m)
    g = rng.uniform(-1, 1, out.shape).astype(np.float32)
    arrays = [nd.array(a) for a in (f, m, b)]
    for a in arrays:
        a.attach_grad()
    with autograd.record():
        video = compose(nd, *arrays, 4)
    video.backward(nd.array(g))
    np.testing.assert_allclose(arrays[0].grad.asnumpy(), g * m, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(arrays[1].grad.asnumpy(), (g * (f - b[:, :, None])).sum(axis=1, keepdims=True),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(arrays[2].grad.asnumpy(), (g * (1 - m)).sum(axis=2), rtol=1e-5, atol=1e-5)


def test_generator_video_is_composed_from_its_own_layers():
    G = built(Generator(nz=10, ngf=4, frames=16, size=16))
    video, fg, mask, bg = (x.asnumpy() for x in G(nd.random.normal(shape=(2, 10))))
    np.testing.assert_allclose(video, mask * fg + (1 - mask) * bg[:, :, None], rtol=1e-5, atol=1e-6)
    assert fg.min() > -1 and fg.max() < 1 and mask.min() > 0 and mask.max() < 1


def layers_of(seq, kind):
    return [b for b in seq if type(b).__name__ == kind]


def test_initialisation_follows_main_lua():
    mx.random.seed(1)
    G, D = built(Generator()), built(Discriminator())
    deconv = layers_of(G.foreground, "Conv3DTranspose")[1]      # 512 -> 256
    w = deconv.weight.data().asnumpy()
    assert w.shape == (512, 256, 4, 4, 4)
    assert abs(w.mean()) < 1e-4 and abs(w.std() - 0.01) < 1e-4
    assert not deconv.bias.data().asnumpy().any()
    gamma = G.foreground[1].bn.gamma.data().asnumpy()
    assert abs(gamma.mean() - 1) < 0.01 and abs(gamma.std() - 0.02) < 0.005
    w = layers_of(D.features, "StridedConv3D")[2].weight.data().asnumpy()
    assert w.shape == (256, 128, 4, 4, 4) and abs(w.std() - 0.01) < 1e-4
    bn_g, bn_d = G.foreground[1].bn, D.features[3].bn
    assert bn_g._kwargs["eps"] == 1e-5 and bn_d._kwargs["eps"] == 1e-3
    assert bn_g._kwargs["momentum"] == 0.9 and bn_d._kwargs["momentum"] == 0.9
    assert G.background[1]._kwargs["eps"] == 1e-5
    # no BatchNorm after conv 1
    assert [type(b).__name__ for b in D.features[:4]] == ["StridedConv3D", "LeakyReLU", "StridedConv3D",
                                                          "BatchNorm3D"]


def test_mask_bias_starts_the_mask_at_its_sigmoid_and_changes_nothing_else(tmp_path):
    """--mask-bias: the head's mask channel starts with that bias (the video channels and every other
    parameter exactly as with the original's zero, seed for seed), and its checkpoints are the original's."""
    from tinyvideo_mx.config import make_config
    from tinyvideo_mx.models.factory import build_generator
    nets = {}
    for bias in (0.0, -2.0):
        mx.random.seed(7)
        nets[bias] = built(build_generator(make_config("tiny", mask_bias=bias)))
    shifted, plain = ({k[len(G.prefix):]: p.data().asnumpy() for k, p in G.collect_params().items()}
                      for G in (nets[-2.0], nets[0.0]))
    head = "foreground_video_mask_head_bias"
    np.testing.assert_array_equal(shifted.pop(head), [0.0, 0.0, 0.0, -2.0])
    np.testing.assert_array_equal(plain.pop(head), [0.0, 0.0, 0.0, 0.0])
    assert shifted.keys() == plain.keys()
    for name in plain:
        np.testing.assert_array_equal(shifted[name], plain[name], err_msg=name)
    z = nd.array(np.random.default_rng(0).standard_normal((4, 100)))
    mask = nets[-2.0](z)[2].asnumpy()
    # the convolution's N(0, 0.01) weights move the logit a little: the mask sits near sigmoid(-2) = 0.119
    assert abs(mask.mean() - 1 / (1 + np.exp(2.0))) < 0.01 and mask.max() < 0.2
    nets[-2.0].save_parameters(str(tmp_path / "G.params"))
    nets[0.0].load_parameters(str(tmp_path / "G.params"))
    np.testing.assert_array_equal(nets[0.0](z)[2].asnumpy(), mask)


def coarsened_by_opencv(image, coarse):
    """The reference for layers.Coarsen2D: block means (INTER_AREA), then bilinear back (INTER_LINEAR)."""
    size = image.shape[-1]
    small = cv2.resize(image, (coarse, coarse), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR)


@pytest.mark.parametrize("size,coarse", [(32, 8), (16, 4), (16, 2)])
def test_coarsen2d_is_opencvs_area_then_linear_resize_in_value_and_gradient(size, coarse):
    from tinyvideo_mx.models.layers import Coarsen2D
    rng = np.random.default_rng(size + coarse)
    x = rng.uniform(-1, 1, (2, 3, size, size)).astype(np.float32)
    block = Coarsen2D(3, size, coarse)
    block.initialize()
    block.hybridize()
    xs = nd.array(x)
    xs.attach_grad()
    weight = rng.standard_normal((2, 3, size, size)).astype(np.float32)
    with autograd.record():
        y = block(xs)
        (y * nd.array(weight)).sum().backward()
    expected = np.stack([np.stack([coarsened_by_opencv(c, coarse) for c in clip]) for clip in x])
    np.testing.assert_allclose(y.asnumpy(), expected, atol=2e-6)
    # the map is linear: its input gradient is the transposed map applied to the output weights, the
    # matrix built column by column from OpenCV's resizes of unit images
    columns = np.stack([coarsened_by_opencv(np.eye(size * size, dtype=np.float32)[i].reshape(size, size),
                                            coarse).ravel() for i in range(size * size)], axis=1)
    expected_grad = (weight.reshape(6, -1) @ columns).reshape(x.shape)
    np.testing.assert_allclose(xs.grad.asnumpy(), expected_grad, atol=2e-5)


def test_background_size_coarsens_the_background_stream_and_changes_nothing_else(tmp_path):
    """--background-size 4 on the tiny model (16x16 frames): every parameter as without it, seed for seed;
    the background is the plain stream's, coarsened; the video is composed from it."""
    from tinyvideo_mx.config import make_config
    from tinyvideo_mx.models.factory import build_generator
    nets = {}
    for coarse in (None, 4):
        mx.random.seed(7)
        nets[coarse] = built(build_generator(make_config("tiny", background_size=coarse)))
    trained = {k: p.data().asnumpy() for k, p in nets[4].collect_params().items() if p.grad_req != "null"}
    plain = {k: p.data().asnumpy() for k, p in nets[None].collect_params().items() if p.grad_req != "null"}
    assert trained.keys() == plain.keys()
    for name in plain:
        np.testing.assert_array_equal(trained[name], plain[name], err_msg=name)
    z = nd.array(np.random.default_rng(0).standard_normal((2, 100)))
    video, foreground, mask, background = (a.asnumpy() for a in nets[4](z))
    plain_background = nets[None](z)[3].asnumpy()
    expected = np.stack([np.stack([coarsened_by_opencv(c, 4) for c in clip]) for clip in plain_background])
    np.testing.assert_allclose(background, expected, atol=2e-6)
    np.testing.assert_allclose(video, mask * foreground + (1 - mask) * background[:, :, None], atol=2e-6)
    nets[4].save_parameters(str(tmp_path / "G.params"))
    again = built(build_generator(make_config("tiny", background_size=4)))
    again.load_parameters(str(tmp_path / "G.params"))
    np.testing.assert_array_equal(again(z)[3].asnumpy(), background)


def test_batchnorm3d_trains_and_infers_like_torch_batchnorm():
    rng = np.random.default_rng(3)
    x = rng.normal(2.0, 3.0, (4, 8, 3, 5, 5)).astype(np.float32)
    bn = BatchNorm3D(1e-3, 8)
    bn.initialize()
    gamma = rng.normal(1, 0.02, 8).astype(np.float32)
    bn.bn.gamma.set_data(nd.array(gamma))
    with autograd.record():
        y = bn(nd.array(x))
    y.backward()      # MXNet's oneDNN BatchNorm updates the running statistics in backward
    mean = x.mean(axis=(0, 2, 3, 4))
    var = x.var(axis=(0, 2, 3, 4))
    c = (None, slice(None), None, None, None)     # a per-channel vector broadcast over (N, C, T, H, W)
    expected = gamma[c] * (x - mean[c]) / np.sqrt(var + 1e-3)[c]
    np.testing.assert_allclose(y.asnumpy(), expected, rtol=1e-4, atol=1e-4)
    # Torch momentum 0.1: running = 0.9 * running + 0.1 * batch statistic.
    np.testing.assert_allclose(bn.bn.running_mean.data().asnumpy(), 0.1 * mean, rtol=1e-4)
    running_var = bn.bn.running_var.data().asnumpy()
    # MXNet accumulates the biased batch variance; Torch the unbiased one (x n/(n-1), n = N*T*H*W per
    # channel: 1.0005 at n=2048, the smallest n of the full-size networks). Documented deviation.
    np.testing.assert_allclose(running_var, 0.9 + 0.1 * var, rtol=1e-4)
    # Inference (no autograd.record): running statistics, as Torch's evaluate().
    z = bn(nd.array(x)).asnumpy()
    expected = gamma[c] * (x - (0.1 * mean)[c]) / np.sqrt(running_var + 1e-3)[c]
    np.testing.assert_allclose(z, expected, rtol=1e-4, atol=1e-4)


def test_the_demo_preset_changes_sizes_and_its_named_deviations_only():
    """--preset original is the paper's recipe; the demo differs in sizes and lengths, and in exactly the
    deviations docs/deviations.md names (each with its measured effect)."""
    import os

    from tinyvideo_mx.config import DEMO_DEVIATIONS, TrainConfig, make_config
    assert make_config("original") == TrainConfig()
    original, demo = make_config("original").to_dict(), make_config("demo").to_dict()
    changed = {k for k in original if original[k] != demo[k]}
    sizes = {"frames", "size", "ngf", "ndf", "batch_size", "iterations", "sample_every", "checkpoint_every", "log_every"}
    arithmetic = {"kernels"}      # which kernels sum the same products: not the recipe (runtime/kernels.py)
    assert changed - sizes - arithmetic == set(DEMO_DEVIATIONS) == {"upsampling", "g_ema", "synthetic_clips", "minibatch_std",
                                                         "mode_seeking", "mask_penalty", "lr", "d_lr"}
    doc = open(os.path.join(os.path.dirname(__file__), "..", "docs", "deviations.md")).read()
    for key in set(DEMO_DEVIATIONS) | arithmetic:
        assert f"`{key}" in doc, key


def test_configurations_saved_before_a_rename_still_load():
    """``num_workers`` (decoding threads) became ``decode_threads``: older runs' config.json still load."""
    from tinyvideo_mx.config import TrainConfig
    old = dict(TrainConfig().to_dict())
    old["num_workers"] = old.pop("decode_threads") + 1
    assert TrainConfig.from_dict(old).decode_threads == 3


def test_minibatch_std_channel_is_the_mean_batch_spread():
    """--minibatch-std: the classifier sees one more channel, everywhere the mean over (C, T, H, W) of the
    features' standard deviation across the batch (float64 reference); a batch of identical clips gets ~0
    there and the other channels are the features unchanged. Off (the original), D is unchanged."""
    from tinyvideo_mx.models.networks import with_batch_spread
    features = np.random.default_rng(3).standard_normal((3, 4, 2, 2, 2))
    out = with_batch_spread(nd, nd.array(features)).asnumpy()
    expected = np.sqrt(features.var(axis=0) + 1e-8).mean()
    assert out.shape == (3, 5, 2, 2, 2)
    np.testing.assert_allclose(out[:, :4], features, rtol=1e-6)
    np.testing.assert_allclose(out[:, 4], expected, rtol=1e-5)
    same = with_batch_spread(nd, nd.array(np.repeat(features[:1], 3, axis=0))).asnumpy()
    assert np.abs(same[:, 4]).max() < 1e-3
    D, D_plain = (built(Discriminator(ndf=4, frames=16, size=32, minibatch_std=flag)) for flag in (True, False))
    assert D.classifier.weight.shape == (2, 33, 1, 2, 2) and D_plain.classifier.weight.shape == (2, 32, 1, 2, 2)
    assert D(nd.random.normal(shape=(3, 3, 16, 32, 32))).shape == (3, 2)
