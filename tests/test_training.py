import json
import os
import struct

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon, nd

from tinyvideo_mx import checkpoint
from tinyvideo_mx.generation.inference import latents
from tinyvideo_mx.training import GanTraining, losses

from support.helpers import tiny_config


def params_of(block):
    return {k[len(block.prefix):]: v.data().asnumpy().copy() for k, v in block.collect_params().items()}


def assert_same_params(a, b, **tol):
    assert a.keys() == b.keys()
    for k in a:
        if tol:
            np.testing.assert_allclose(a[k], b[k], err_msg=k, **tol)
        else:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_losses_match_hand_computation():
    logits = np.array([[2.0, -1.0], [0.5, 0.25]], np.float32)
    ce = losses.cross_entropy(nd.array(logits), losses.FAKE).asscalar()
    expected = np.mean([np.log(np.exp(row).sum()) - row[1] for row in logits.astype(np.float64)])
    assert ce == pytest.approx(expected, rel=1e-6)
    smoothed = losses.cross_entropy(nd.array(logits), losses.REAL, smoothing=0.1).asscalar()
    log_p = logits.astype(np.float64) - np.log(np.exp(logits.astype(np.float64)).sum(axis=1, keepdims=True))
    assert smoothed == pytest.approx(np.mean(-0.9 * log_p[:, 0] - 0.1 * log_p[:, 1]), rel=1e-5)
    mask = nd.array(np.random.default_rng(0).uniform(0, 1, (2, 1, 4, 3, 3)))
    mask.attach_grad()
    with autograd.record():
        prior = losses.mask_prior(mask, 0.1)
    prior.backward()
    assert abs(prior.asscalar() - 0.1 * mask.asnumpy().mean()) < 1e-7
    np.testing.assert_allclose(mask.grad.asnumpy(), 0.1 / mask.size)   # L1Penalty's sizeAverage gradient


def test_mode_seeking_term_and_its_gradient_match_hand_computation():
    """weight / (d_video / d_z + eps): rows 0..h-1 paired with h..2h-1 (an odd last row sits out), d the mean
    absolute difference, of z and of the clips' average frames; its gradient by hand: -weight / r^2 / d_z *
    sign(average-frame difference) / elements of an average frame / frames, the same in every frame."""
    rng = np.random.default_rng(3)
    video, z = rng.uniform(-1, 1, (5, 3, 2, 3, 3)), rng.standard_normal((5, 4, 1, 1, 1))
    v, zz = nd.array(video), nd.array(z)
    v.attach_grad()
    with autograd.record():
        term = losses.mode_seeking(v, zz, weight=0.5)
    term.backward()
    frames = video.mean(axis=2)                                   # (5, 3, 3, 3)
    d_video = np.abs(frames[:2] - frames[2:4]).mean()
    d_z = np.abs(z[:2] - z[2:4]).mean()
    ratio = d_video / d_z + 1e-5
    assert term.asscalar() == pytest.approx(0.5 / ratio, rel=1e-5)
    sign = np.sign(frames[:2] - frames[2:4])[:, :, None] / frames[:2].size / video.shape[2]
    expected = np.zeros_like(video)
    expected[:2], expected[2:4] = sign, -sign
    expected *= -0.5 / ratio ** 2 / d_z
    np.testing.assert_allclose(v.grad.asnumpy(), expected, rtol=1e-4, atol=1e-9)
    # clips whose average frames agree are not "apart", however differently they change over time
    still = nd.array(np.broadcast_to(rng.uniform(-1, 1, (1, 3, 1, 3, 3)), (4, 3, 2, 3, 3)).copy())
    still[0:1, :, 0] += 0.5
    still[0:1, :, 1] -= 0.5
    # (float32 rounding of the average leaves d_video ~1e-8: next to eps = 1e-5, the term is ~1 / eps)
    assert losses.mode_seeking(still, nd.array(z[:4])).asscalar() == pytest.approx(1 / 1e-5, rel=1e-2)
    assert losses.mode_seeking(nd.ones((1, 3, 2, 2, 2)), nd.ones((1, 4))) is None


def test_mode_seeking_moves_g_only_and_counts_in_gs_loss(tmp_path):
    """The term is part of G's loss: D's step is the same with and without it, G's is not, and the logged
    penalty is the mask prior plus the term on the slice's own video and z."""
    def one_step(weight, name):
        run = GanTraining(tiny_config(hybridize=False, mode_seeking=weight, iterations=1), str(tmp_path / name),
                          progress=False)
        real = nd.array(np.random.default_rng(1).uniform(-1, 1, (run.config.batch_size, 3, run.config.frames,
                                                                   run.config.size, run.config.size)))
        slices = run._slices(real)
        run.discriminator_step(slices)
        run.generator_step(slices)
        values = run._scalars(slices)
        return run, slices[0], values
    plain, _, plain_values = one_step(0.0, "plain")
    seeking, s, values = one_step(2.0, "seeking")
    assert_same_params(params_of(plain.D), params_of(seeking.D))
    assert max(np.abs(a - b).max() for a, b in zip(params_of(plain.G).values(), params_of(seeking.G).values())) > 1e-6
    term = losses.mode_seeking(s.video, s.generator_inputs[0], 2.0).asscalar()
    assert term > 0 and s.mode_seeking.asscalar() == pytest.approx(term, rel=1e-6)
    assert values["penalty"] == pytest.approx(0.1 * values["mask_mean"] + term, rel=1e-5)
    assert plain_values["penalty"] == pytest.approx(0.1 * plain_values["mask_mean"], rel=1e-5)


class LinearD(gluon.HybridBlock):
    """A discriminator that is linear in its input, so dL/dinput can be computed by hand."""

    def __init__(self, inputs, **kw):
        super().__init__(**kw)
        with self.name_scope():
            self.dense = gluon.nn.Dense(2, in_units=inputs, weight_initializer=mx.init.Normal(0.05))

    def hybrid_forward(self, F, x):
        return self.dense(F.flatten(x))


def use_linear_d(run, inputs):
    """Put a LinearD in ``run``'s place of D: the network, the parameters the step reads, and their Adam."""
    run.D = LinearD(inputs)
    run.D.initialize()
    run.params["D"] = run.D.collect_params()
    run.trainers["D"] = gluon.Trainer(run.params["D"], "adam", {"learning_rate": 0.05, "beta1": 0.5})


def relative_error(got, want):
    return float(np.abs(got - want).max() / (np.abs(want).max() + 1e-20))


def informative(grads):
    """Names of the parameters whose gradient is not pure rounding noise: a convolution bias right
    before a BatchNorm has a true gradient of exactly 0 (BN subtracts it again)."""
    scale = np.median([np.abs(g).max() for g in grads.values()])
    return [k for k, g in grads.items() if np.abs(g).max() > 1e-3 * scale]


@pytest.mark.parametrize("g_step", ["reuse", "recompute"])
def test_generator_step_uses_the_originals_d_weights_and_activations(g_step, tmp_path):
    """reuse: dL/dfake from the D-step logits, through D's *updated* weights (Torch's updateGradInput
    after optim.adam on D). recompute: logits of the updated D. G's gradients must match their own
    hand-made reference, and not the other mode's."""
    cfg = tiny_config(g_step=g_step, hybridize=False, batch_size=3)
    run = GanTraining(cfg, str(tmp_path / "run"), progress=False)
    inputs = 3 * cfg.frames * cfg.size * cfg.size
    use_linear_d(run, inputs)
    real = nd.array(np.random.default_rng(1).uniform(-1, 1, (3, 3, cfg.frames, cfg.size, cfg.size)))
    z = nd.array(latents([cfg.seed, 0], 3, cfg.nz))
    G_before = params_of(run.G)
    W_old, b_old = (p.data().asnumpy().copy() for p in (run.D.dense.weight, run.D.dense.bias))
    with autograd.record():
        video, _, _, _ = run.G(z)                  # same BN batch statistics as the step will use
    fake = video.asnumpy().reshape(3, -1)
    run.step(real)
    W_new, b_new = (p.data().asnumpy() for p in (run.D.dense.weight, run.D.dense.bias))
    assert np.abs(W_new - W_old).max() > 1e-3                     # D really moved

    def reference_grads(logits):
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        dlogits = (p - np.array([1.0, 0.0])) / 3                  # d CE(., REAL) / d logits, batch mean
        dfake = (dlogits @ W_new).reshape(video.shape)            # always through the updated weights
        ref = GanTraining(cfg, str(tmp_path / "ref"), progress=False)
        for k, v in ref.G.collect_params().items():
            v.set_data(nd.array(G_before[k[len(ref.G.prefix):]]))
        with autograd.record():
            video2, _, mask2, _ = ref.G(z)
            prior = losses.mask_prior(mask2, cfg.mask_penalty)
        autograd.backward([video2, prior], head_grads=[nd.array(dfake), None])
        return {k[len(ref.G.prefix):]: v.grad().asnumpy() for k, v in ref.G.collect_params().items() if v.grad_req != "null"}

    references = {"reuse": reference_grads(fake @ W_old.T + b_old), "recompute": reference_grads(fake @ W_new.T + b_new)}
    got = {k[len(run.G.prefix):]: v.grad().asnumpy() for k, v in run.G.collect_params().items() if v.grad_req != "null"}
    other = "recompute" if g_step == "reuse" else "reuse"
    names = informative(references[g_step])
    assert len(names) > len(got) // 2
    assert max(relative_error(got[k], references[g_step][k]) for k in names) < 2e-3
    assert max(relative_error(got[k], references[other][k]) for k in names) > 2e-2


def test_d_sees_noisy_clips_and_a_smoothed_real_target(tmp_path):
    """Instance noise and one-sided label smoothing: D's loss on the real batch is the smoothed
    cross-entropy of D(real + noise), the noise falls linearly from its start value to 0 and is drawn
    from the iteration alone, and D gets its own learning rate."""
    cfg = tiny_config(hybridize=False, batch_size=3, instance_noise=0.5, label_smoothing=0.2, d_lr=1e-4, iterations=4)
    run = GanTraining(cfg, str(tmp_path / "run"), progress=False)
    assert (run.trainers["D"].learning_rate, run.trainers["G"].learning_rate) == (1e-4, cfg.lr)
    use_linear_d(run, 3 * cfg.frames * cfg.size * cfg.size)
    real = nd.array(np.random.default_rng(1).uniform(-1, 1, (3, 3, cfg.frames, cfg.size, cfg.size)))
    (noise_real, noise_fake), = run.instance_noise(real.shape)
    (again, _), = run.instance_noise(real.shape)
    np.testing.assert_array_equal(noise_real.asnumpy(), again.asnumpy())
    assert abs(noise_real.asnumpy().std() - 0.5) < 0.01 and abs(noise_fake.asnumpy().std() - 0.5) < 0.01
    assert np.abs(noise_real.asnumpy() - noise_fake.asnumpy()).max() > 1
    W, b = (p.data().asnumpy().astype(np.float64) for p in (run.D.dense.weight, run.D.dense.bias))
    logits = (real.asnumpy() + noise_real.asnumpy()).reshape(3, -1) @ W.T + b
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    values = run.step(real)
    assert values["loss_d_real"] == pytest.approx(np.mean(-0.8 * log_p[:, 0] - 0.2 * log_p[:, 1]), rel=1e-4)
    run.iteration = 2
    (half, _), = run.instance_noise(real.shape)
    assert abs(half.asnumpy().std() - 0.25) < 0.005
    run.iteration = 4
    assert run.instance_noise(real.shape) == [(None, None)]


def test_the_mask_prior_falls_linearly_to_zero_when_asked(tmp_path):
    """--mask-penalty-until U: G pays weight * (1 - i / U) * mean(m) at iteration i, nothing from U on; without
    it the original's constant weight * mean(m)."""
    mask = nd.array(np.random.default_rng(2).uniform(0, 1, (2, 1, 4, 3, 3)))
    mean = float(mask.asnumpy().astype(np.float64).mean())
    fading = GanTraining(tiny_config(mask_penalty=0.4, mask_penalty_until=4), str(tmp_path / "a"), progress=False)
    constant = GanTraining(tiny_config(mask_penalty=0.4), str(tmp_path / "b"), progress=False)
    for iteration, share in ((0, 1.0), (1, 0.75), (3, 0.25), (4, 0.0), (7, 0.0)):
        fading.iteration = constant.iteration = iteration
        assert fading.mask_penalty(mask).asscalar() == pytest.approx(0.4 * share * mean, rel=1e-6, abs=1e-9)
        assert constant.mask_penalty(mask).asscalar() == pytest.approx(0.4 * mean, rel=1e-6)


def test_learning_rates_fall_linearly_when_asked(tmp_path):
    """--lr-fall-from B --lr-fall-until U --lr-end E: G's rate is lr up to iteration B, lr + (E - lr) * (i - B) /
    (U - B) between, E from U on; D's, without --d-lr-end, stays; without --lr-fall-from both stay."""
    run = GanTraining(tiny_config(lr=1e-3, d_lr=5e-4, lr_fall_from=2, lr_fall_until=6, lr_end=2e-4),
                      str(tmp_path / "g"), progress=False)
    for iteration, g_rate in ((0, 1e-3), (2, 1e-3), (3, 8e-4), (4, 6e-4), (5, 4e-4), (6, 2e-4), (9, 2e-4)):
        run.iteration = iteration
        run.set_learning_rates()
        assert run.trainers["G"].learning_rate == pytest.approx(g_rate, rel=1e-12)
        assert run.trainers["D"].learning_rate == 5e-4
    d_only = GanTraining(tiny_config(lr=1e-3, lr_fall_from=0, d_lr_end=0.0), str(tmp_path / "d"), progress=False)
    assert d_only.config.lr_fall_until == 4          # the run's length, fixed at the start and saved
    assert checkpoint.read_meta(d_only.save_checkpoint())["config"]["lr_fall_until"] == 4
    d_only.iteration = 1
    d_only.set_learning_rates()
    assert (d_only.trainers["G"].learning_rate, d_only.trainers["D"].learning_rate) == (1e-3, pytest.approx(7.5e-4))
    constant = GanTraining(tiny_config(lr=1e-3), str(tmp_path / "c"), progress=False)
    constant.iteration = 3
    constant.set_learning_rates()
    assert (constant.trainers["G"].learning_rate, constant.trainers["D"].learning_rate) == (1e-3, 1e-3)


@pytest.mark.parametrize("fall", [True, False])
def test_rates_fallen_to_zero_leave_the_weights_where_they_are(fall, tmp_path):
    """With both rates at 0 from iteration 1 on, the weights after three iterations are those after one (the
    step really uses the falling rates); with constant rates they move on."""
    cfg = tiny_config(lr_fall_from=0, lr_fall_until=1, lr_end=0.0, d_lr_end=0.0) if fall else tiny_config()
    run = GanTraining(cfg, str(tmp_path / "run"), progress=False)
    trainable = {name: [k for k, p in net.collect_params().items() if p.grad_req != "null"]
                 for name, net in (("G", run.G), ("D", run.D))}

    def weights():
        return {k: p.data().asnumpy().copy() for name, net in (("G", run.G), ("D", run.D))
                for k, p in net.collect_params().items() if k in trainable[name]}
    run.step(run.next_batch())
    after_one = weights()
    run.step(run.next_batch())
    run.step(run.next_batch())
    run.data.close()
    moved = [k for k, v in weights().items() if not np.array_equal(v, after_one[k])]
    assert (moved == []) if fall else len(moved) > len(after_one) // 2


@pytest.mark.parametrize("ends, message", [
    (dict(lr_end=0.0, d_lr_end=0.0), "G's and D's learning rates fell to 0 at iteration 2 (--lr-fall-until): "
                                     "iterations 3-5 leave their weights where they are"),
    (dict(d_lr_end=0.0), "D's learning rate fell to 0 at iteration 2 (--lr-fall-until): iterations 3-5 leave its "
                         "weights where they are"),
    (dict(lr_end=1e-5), None)])
def test_extending_a_run_whose_rates_fell_to_zero_says_so(ends, message, tmp_path, caplog):
    cfg = tiny_config(iterations=2, checkpoint_every=2, sample_every=0, lr_fall_from=0, **ends)
    GanTraining(cfg, str(tmp_path / "run"), progress=False).run()
    with caplog.at_level("WARNING"):
        GanTraining.resume(str(tmp_path / "run"), progress=False, iterations=5).data.close()
    warned = [m for m in caplog.messages if "fell to 0" in m]
    assert warned == ([message] if message else [])


def use_sgd(run, lr=0.1):
    """Plain SGD, so a step moves every parameter by exactly -lr * gradient (Adam's first step is
    ~lr * sign(g) and would turn rounding noise in tiny gradients into full-size differences)."""
    run.trainers = {name: gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": lr}, kvstore=None)
                    for name, net in (("G", run.G), ("D", run.D))}


def step_deltas(cfg, run_dir, init_from, real, z=None):
    run = GanTraining(cfg, str(run_dir), progress=False)
    checkpoint.load_into(init_from, {"G": run.G, "D": run.D}, ctx=run.contexts)
    use_sgd(run)
    before = (params_of(run.G), params_of(run.D))
    if z is not None:
        run.generator_inputs = lambda r, it: [nd.array(z)]
    run.step(real)
    run.data.close()
    after = (params_of(run.G), params_of(run.D))
    return run, [{k: a[k] - b[k] for k in a} for a, b in zip(after, before)]


def assert_same_deltas(a, b, tolerance=1e-3):
    names = informative(b)
    assert len(names) > len(b) // 2
    for k in names:
        scale = np.abs(b[k]).max()
        np.testing.assert_allclose(a[k], b[k], rtol=tolerance, atol=tolerance * scale, err_msg=k)


def test_hybridized_step_equals_imperative_step(tmp_path):
    """Regression: hybridize(static_shape=True) trained D the wrong way in MXNet 1.9.1."""
    cfg = dict(ngf=8, ndf=8, size=32, batch_size=4)
    base = GanTraining(tiny_config(**cfg), str(tmp_path / "base"), progress=False)
    ckpt, real = base.save_checkpoint(), base.next_batch()
    base.data.close()
    _, hybrid = step_deltas(tiny_config(**cfg), tmp_path / "h", ckpt, real)
    _, imperative = step_deltas(tiny_config(hybridize=False, **cfg), tmp_path / "i", ckpt, real)
    for h, i in zip(hybrid, imperative):
        assert max(np.abs(v).max() for v in i.values()) > 1e-6    # the step really moved the networks
        assert_same_deltas(h, i, tolerance=1e-2)


def test_exact_resume_gives_identical_parameters(tmp_path):
    cfg = tiny_config(iterations=4, checkpoint_every=2, sample_every=0)
    straight = GanTraining(cfg, str(tmp_path / "straight"), progress=False).run()
    first = GanTraining(tiny_config(iterations=2, checkpoint_every=2, sample_every=0), str(tmp_path / "split"),
                        progress=False).run()
    assert first.iteration == 2
    resumed = GanTraining.resume(str(tmp_path / "split"), progress=False, iterations=4).run()
    assert resumed.iteration == 4
    assert_same_params(params_of(straight.G), params_of(resumed.G))
    assert_same_params(params_of(straight.D), params_of(resumed.D))
    meta = checkpoint.read_meta(checkpoint.resolve(str(tmp_path / "split")))
    assert meta["iteration"] == 4 and meta["rng"] == {"kind": "counter", "seed": 0, "next_iteration": 4}
    assert meta["data"]["next_batch"] == 4 and meta["config"]["iterations"] == 4
    assert sorted(os.listdir(checkpoint.resolve(str(tmp_path / "split")))) == \
        ["D.params", "D.states", "G.params", "G.states", "meta.json"]


def test_exact_resume_with_the_demo_deviations_keeps_the_average(tmp_path):
    """Resize-convolutions with replicated end frames, G's weight average, D's regularisers (noise drawn
    per iteration) and falling learning rates: resume is still bit-exact, the average included, and sampling
    reads the average."""
    from tinyvideo_mx.generation.inference import load_generator
    cfg = dict(checkpoint_every=2, sample_every=0, upsampling="resize", g_ema=0.9, temporal_padding="replicate",
               instance_noise=0.3, instance_noise_until=4, label_smoothing=0.1, d_lr=1e-4, mode_seeking=0.5,
               lr_fall_from=1, lr_fall_until=4, lr_end=1e-4, d_lr_end=0.0)
    straight = GanTraining(tiny_config(iterations=4, **cfg), str(tmp_path / "straight"), progress=False).run()
    GanTraining(tiny_config(iterations=2, **cfg), str(tmp_path / "split"), progress=False).run()
    resumed = GanTraining.resume(str(tmp_path / "split"), progress=False, iterations=4).run()
    for a, b in ((straight.G, resumed.G), (straight.D, resumed.D), (straight.sampling_generator(), resumed.sampling_generator())):
        assert_same_params(params_of(a), params_of(b))
    assert "G_ema.params" in os.listdir(checkpoint.resolve(str(tmp_path / "split")))
    trained, average = params_of(resumed.G), params_of(resumed.sampling_generator())
    assert any(not np.array_equal(trained[k], average[k]) for k in trained)
    loaded, _ = load_generator(str(tmp_path / "split"))
    assert_same_params(params_of(loaded), average)


def test_sampling_during_training_leaves_the_average_writable(tmp_path):
    """Regression: running inference on the averaged network itself let oneDNN reorder its weights, and
    the next update failed ("to.IsDefaultData()"); samples now come from a copy."""
    cfg = tiny_config(iterations=4, sample_every=1, checkpoint_every=4, g_ema=0.9, ngf=16, ndf=16, size=32, batch_size=8)
    run = GanTraining(cfg, str(tmp_path / "run"), progress=False).run()
    assert run.iteration == 4 and len(os.listdir(tmp_path / "run" / "samples")) == 8


def test_batchnorm_statistics_are_estimated_from_the_networks_own_activations():
    """estimate_batchnorm_statistics: 40 batches in training mode move a BatchNorm's running mean from 0
    to (1 - 0.9**40) of its input's mean and the running variance from 1 to 0.9**40 + (1 - 0.9**40) of the
    input's (biased) variance (MXNet's momentum 0.9), and leave the weights alone."""
    from tinyvideo_mx.training.averaging import STATISTICS_BATCHES, estimate_batchnorm_statistics
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Dense(3, in_units=2), gluon.nn.BatchNorm(in_channels=3))
    net.initialize(mx.init.Normal(1.0))
    net.hybridize(static_alloc=True)
    x = np.random.default_rng(0).standard_normal((8, 2)).astype(np.float32) * 3 + 1
    weight = net[0].weight.data().asnumpy().copy()
    estimate_batchnorm_statistics(net, lambda k: [x])
    dense = x.astype(np.float64) @ weight.T.astype(np.float64) + net[0].bias.data().asnumpy()
    kept = 0.9 ** STATISTICS_BATCHES
    np.testing.assert_allclose(net[1].running_mean.data().asnumpy(), (1 - kept) * dense.mean(axis=0), rtol=1e-4)
    np.testing.assert_allclose(net[1].running_var.data().asnumpy(), kept + (1 - kept) * dense.var(axis=0), rtol=1e-4)
    np.testing.assert_array_equal(net[0].weight.data().asnumpy(), weight)


def test_the_averaged_generator_estimates_its_statistics_on_every_context(tmp_path):
    """With two contexts the averaged G's snapshot re-estimates its BatchNorm statistics on both, from
    the same inputs: the replicas agree, and differ from the trained G's copied statistics."""
    cfg = tiny_config(iterations=1, sample_every=0, checkpoint_every=1, g_ema=0.9, ctx="cpu0,cpu1", batch_size=4)
    run = GanTraining(cfg, str(tmp_path / "run"), progress=False).run()
    trained = run.G.collect_params()
    means = [(name, p) for name, p in run.sampling_generator().collect_params().items()
             if name.endswith("running_mean")]
    assert means
    for name, p in means:
        first, second = (a.asnumpy() for a in p.list_data())
        np.testing.assert_array_equal(first, second, err_msg=name)
    assert any(not np.allclose(p.list_data()[0].asnumpy(), trained[name].list_data()[0].asnumpy())
               for name, p in means)


def test_generator_average_follows_its_formula():
    """Two updates by hand: decay_t = min(decay, (1 + t) / (10 + t)); weights averaged, BN running
    statistics copied."""
    from tinyvideo_mx.models.factory import build_generator, prepare
    from tinyvideo_mx.training.averaging import GeneratorAverage, effective_decay
    config = tiny_config()
    def build():
        return prepare(build_generator(config), [mx.cpu()], hybridize=False)
    source, average = build(), build()
    keeper = GeneratorAverage(source, average, decay=0.5, build=build)
    assert effective_decay(0.5, 0) == 0.1 and effective_decay(0.5, 100) == 0.5
    start = params_of(source)
    expected = dict(start)
    for step in (0, 20):
        for name, p in source.collect_params().items():
            p.set_data(p.data() + 1.0)
        keeper.update(step)
        d = effective_decay(0.5, step)
        now = params_of(source)
        for k in expected:
            running = k.endswith(("running_mean", "running_var"))
            expected[k] = now[k] if running else expected[k] * d + now[k] * (1 - d)
    got = params_of(average)
    assert_same_params(params_of(keeper.snapshot()), got)
    for k in expected:
        np.testing.assert_allclose(got[k], expected[k], rtol=1e-6, atol=1e-6, err_msg=k)
    weight = next(k for k in expected if k.endswith("weight"))
    np.testing.assert_allclose(got[weight] - start[weight], 0.9 * 0.5 + 2 * 0.5, rtol=1e-5)


def test_two_contexts_equal_one_context_on_a_duplicated_batch(tmp_path):
    """Each context gets one half; with identical halves the BN statistics per half equal the full
    batch's, so two CPU contexts must give the single-context update (the multi-GPU code path on CPU)."""
    base = GanTraining(tiny_config(batch_size=4), str(tmp_path / "base"), progress=False)
    ckpt, half_real = base.save_checkpoint(), base.next_batch()[:2]
    base.data.close()
    real = nd.concat(half_real, half_real, dim=0)
    half_z = latents([0, 0], 2, base.config.nz)
    z = np.concatenate([half_z, half_z])
    _, single = step_deltas(tiny_config(batch_size=4), tmp_path / "one", ckpt, real, z)
    run, double = step_deltas(tiny_config(batch_size=4, ctx="cpu0,cpu1"), tmp_path / "two", ckpt, real, z)
    for p in list(run.G.collect_params().values()) + list(run.D.collect_params().values()):
        a, b = (x.asnumpy() for x in p.list_data())
        np.testing.assert_array_equal(a, b)          # the replicas stay identical
    for s_, d in zip(single, double):
        assert_same_deltas(d, s_)


@pytest.mark.parametrize("g_step", ["reuse", "recompute"])
def test_realistic_channel_counts_train_without_crashing(tmp_path, g_step):
    """Full widths (512..64 channels; the oneDNN bugs only show in backward at >= 8 channels), short clips."""
    cfg = tiny_config(ngf=64, ndf=64, frames=16, size=32, batch_size=2, iterations=3, sample_every=3,
                      checkpoint_every=3, g_step=g_step)
    run = GanTraining(cfg, str(tmp_path), progress=False).run()
    rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    rows = [r for r in rows if "loss_d" in r]          # the sample grid's statistics have lines of their own
    assert [r["iteration"] for r in rows] == [1, 2, 3]
    assert all(np.isfinite(r[k]) for r in rows for k in ("loss_d", "loss_g", "mask_mean"))
    assert rows[-1]["loss_g"] == pytest.approx(rows[-1]["loss_g_adv"] + rows[-1]["penalty"])
    assert run.iteration == 3 and os.path.exists(tmp_path / "samples" / "iter00000003_video.gif")


def read_tfevents(path):
    from tensorboardX.proto import event_pb2
    out = []
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    while pos < len(data):
        (length,) = struct.unpack("<Q", data[pos:pos + 8])
        event = event_pb2.Event.FromString(data[pos + 12:pos + 12 + length])
        pos += 12 + length + 4
        for v in event.summary.value:
            out.append((event.step, v.tag, v.simple_value))
    return out


def test_scalars_are_written_for_tensorboard(tiny_model):
    run_dir = tiny_model / "run"
    (events,) = os.listdir(run_dir / "tensorboard")
    scalars = read_tfevents(run_dir / "tensorboard" / events)
    rows = [json.loads(line) for line in open(run_dir / "metrics.jsonl")]
    assert {(s, t) for s, t, _ in scalars} >= {(1, "train/loss_d"), (2, "train/mask_mean"), (2, "train/loss_g_adv")}
    by_key = {(s, t): v for s, t, v in scalars}
    assert by_key[(2, "train/loss_d")] == pytest.approx(rows[1]["loss_d"], rel=1e-6)
