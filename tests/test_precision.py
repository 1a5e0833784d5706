"""Mixed precision: AMP bfloat16 on CPU (in a subprocess: AMP is process-wide) and loss scaling."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from test_training import use_sgd

from tinyvideo_mx.config import TrainConfig
from tinyvideo_mx.data import synthetic
from tinyvideo_mx.errors import SettingError
from tinyvideo_mx.runtime import precision
from tinyvideo_mx.training import GanTraining

from support.helpers import tiny_config

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.mark.skipif(not precision.cpu_supports_bfloat16(), reason="this CPU has no bfloat16 arithmetic")
@pytest.mark.parametrize("g_form,upsampling", [("deconvolution", "transposed"), ("phases", "transposed"),
                                               ("auto", "transposed"), ("auto", "resize")])
def test_amp_runs_in_bfloat16_trains_and_resumes_exactly(tmp_path, g_form, upsampling):
    """With G in Deconvolution form it runs imperatively (a hybridized Deconvolution fails in backward
    under AMP); in phase form (what "auto" takes under bfloat16) all of G is Convolution / FullyConnected
    and runs hybridized, with either up-sampling."""
    data_list = synthetic.ensure_dataset(str(tmp_path / "data"), clips=16, frames=32, frame_height=128)
    out = subprocess.run([sys.executable, os.path.join(HERE, "support", "amp_worker.py"), data_list, g_form,
                          upsampling],
                         capture_output=True, text=True, timeout=300, cwd=HERE)
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["dtype"] == "bfloat16" and r["d_hybridized"] and r["g_hybridized"] == (g_form != "deconvolution")
    # bfloat16 keeps 8 significant bits: the logits move by a rounding-sized amount, not more, not zero.
    assert 1e-5 * r["logit_scale"] < r["logit_change"] < 0.05 * r["logit_scale"]
    assert r["losses_finite"] and r["iterations"] == 3
    assert r["g_params_moved"] > r["g_params"] // 2
    assert r["resume_exact"]


@pytest.mark.skipif(not precision.cpu_supports_bfloat16(), reason="this CPU has no bfloat16 arithmetic")
@pytest.mark.parametrize("data_gradient", ["built in", "by forward"])
def test_phase_form_under_amp_is_the_transposed_conv_to_bfloat16_rounding(data_gradient):
    """Hybridized under AMP the phase form's Convolution runs in bfloat16 and its interleave reads the
    float32 cast of it (no plain copy, layers.interleave_phases): forward, weight and input gradients
    against float64 numpy, at depths 1 (extra frame), 2 and 3 and in 2-D, and the resize-convolution (the
    same interleave) at depths 1 and 3 with zero and replicated end frames; with the data gradient as MXNet
    computes it and as a forward convolution (models/data_gradient.py, what AMX machines use; there also D's
    strided convolution, its data gradient a float32 transposed convolution). bfloat16
    keeps 8 significant bits (relative rounding 2**-9 per operand): errors are a rounding's size, neither
    zero nor larger."""
    flags = ["--data-gradient-by-forward"] if data_gradient == "by forward" else []
    out = subprocess.run([sys.executable, os.path.join(HERE, "support", "amp_layer_worker.py")] + flags,
                         capture_output=True, text=True, timeout=300, cwd=HERE)
    assert out.returncode == 0, out.stderr[-3000:]
    errors = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(errors) == (8 if flags else 6)
    for name, (forward, weight_grad, input_grad) in errors.items():
        assert 1e-4 < forward < 2e-2, (name, forward)
        assert weight_grad < 2e-2 and input_grad < 2e-2, (name, weight_grad, input_grad)


class FixedScaler:
    """Stands in for AMP's dynamic loss scaler (float16 AMP needs a GPU)."""
    loss_scale = 1024.0

    def has_overflow(self, params):
        return False


def test_loss_scaling_gives_the_unscaled_update(tmp_path):
    """Every loss head is multiplied by the scale and the trainers divide it out: the same update."""
    results = []
    for scaled in (False, True):
        run = GanTraining(tiny_config(batch_size=2), str(tmp_path / str(scaled)), progress=False)
        use_sgd(run)      # plain SGD: the update is proportional to the gradient (Adam's first step is ~sign(g))
        if scaled:
            for name, trainer in run.trainers.items():
                trainer._amp_loss_scaler, trainer._amp_original_scale = FixedScaler(), trainer._scale
                run.precision._scalers[name] = trainer
        real = run.next_batch()
        before = {k: p.data().asnumpy().copy() for k, p in run.G.collect_params().items()}
        run.step(real)
        if scaled:
            assert run.trainers["G"]._scale == pytest.approx(1 / 1024)
        results.append({k: p.data().asnumpy() - before[k] for k, p in run.G.collect_params().items()})
        run.data.close()
    plain, scaled = results
    for k in plain:
        np.testing.assert_allclose(scaled[k], plain[k], rtol=1e-4, atol=1e-4 * np.abs(plain[k]).max(), err_msg=k)
    assert max(np.abs(v).max() for v in plain.values()) > 1e-5


def test_amp_needs_bfloat16_hardware_on_cpu(tmp_path, monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("flags\t\t: fpu sse2 avx2 avx512f\n")
    assert not precision.cpu_supports_bfloat16(str(cpuinfo))
    monkeypatch.setattr(precision, "cpu_supports_bfloat16", lambda: False)
    import mxnet as mx
    with pytest.raises(ValueError) as err:
        precision.amp_dtype([mx.cpu()])
    assert str(err.value) == ("--amp on CPU needs a processor with bfloat16 arithmetic (avx512_bf16 or amx_bf16 "
                              "in /proc/cpuinfo); this one has neither: train without --amp")
    assert precision.amp_dtype([mx.gpu(0)]) == "float16"


AVX512, AVX2 = {"avx2", "avx512f", "avx512_bf16"}, {"avx2"}


@pytest.mark.parametrize("flags,width,forms", [(AVX2, 64, ("phases", "phases")), (AVX2, 16, ("deconvolution", "strided")),
                                                (AVX512, 64, ("deconvolution", "strided"))])
def test_training_networks_take_the_forms_auto_means_on_this_cpu(monkeypatch, flags, width, forms):
    from tinyvideo_mx.models.factory import build_generator, build_networks
    from tinyvideo_mx.runtime import cpu
    monkeypatch.setattr(cpu, "read_cpuinfo", lambda *args: ("Test CPU", flags))
    config = TrainConfig(ngf=width, ndf=width)
    G, D = build_networks(config, None, "cpu")
    assert (G.form, D.form) == forms
    assert build_networks(config, None, "gpu")[0].form == "deconvolution"
    assert build_generator(config).form == "deconvolution"           # sampling, export and serving


def test_forms_auto_are_the_measured_faster_ones():
    assert precision.generator_form("auto") == "deconvolution"               # no device: sampling, export
    assert precision.generator_form("auto", None, AVX512, "cpu", 64) == "deconvolution"
    assert precision.generator_form("auto", None, AVX2, "cpu", 64) == "phases"
    assert precision.generator_form("auto", None, AVX2, "cpu", 16) == "deconvolution"     # the demo's width
    assert precision.generator_form("auto", None, AVX2, "gpu", 64) == "deconvolution"
    assert precision.generator_form("auto", "bfloat16") == "phases"
    assert precision.generator_form("auto", "float16") == "deconvolution"
    assert precision.discriminator_form("auto", None, AVX512) == "strided"
    assert precision.discriminator_form("auto", None, AVX2) == "phases"
    assert precision.discriminator_form("auto", "bfloat16", AVX512) == "strided"
    assert precision.discriminator_form("auto", None, AVX2, device="gpu") == "strided"
    assert precision.discriminator_form("auto", None, AVX2, ndf=16) == "strided"       # the demo's width
    for dtype in (None, "bfloat16"):
        assert precision.generator_form("phases", dtype) == "phases"
        assert precision.generator_form("deconvolution", dtype) == "deconvolution"
        for flags in (AVX512, AVX2):
            assert precision.discriminator_form("phases", dtype, flags) == "phases"
            assert precision.discriminator_form("strided", dtype, flags) == "strided"
    with pytest.raises(SettingError) as error:
        TrainConfig(d_form="sideways")
    assert str(error.value) == "d_form must be one of ('auto', 'strided', 'phases'), got 'sideways'"
    older = TrainConfig().to_dict()
    del older["d_form"]                     # a run saved before D had forms
    assert TrainConfig.from_dict(older).d_form == "auto"
    assert precision.Precision(False, []).hybridize_generator("deconvolution")
    bf16 = precision.Precision(False, [])
    bf16.dtype = "bfloat16"
    assert bf16.hybridize_generator("phases") and not bf16.hybridize_generator("deconvolution")


def test_cpuinfo_is_read_once_per_call_and_amx_is_decided_from_it(tmp_path, monkeypatch):
    from tinyvideo_mx.runtime import cpu
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: fpu avx512f avx512_bf16 amx_bf16\n\n"
                    "processor\t: 1\nmodel name\t: Other\nflags\t\t: fpu\n")
    model, flags = cpu.read_cpuinfo(str(info))
    assert model == "Test CPU" and {"avx512_bf16", "amx_bf16"} <= flags and cpu.has_bfloat16(flags)
    assert cpu.read_cpuinfo(str(tmp_path / "missing"))[1] == set()
    # a virtual machine's short name gets the first processor's family and model numbers
    info.write_text("processor\t: 0\ncpu family\t: 25\nmodel\t\t: 17\nmodel name\t: AMD EPYC\nflags\t\t: avx2\n\n"
                    "processor\t: 1\ncpu family\t: 6\nmodel\t\t: 143\nmodel name\t: Other\n")
    assert cpu.read_cpuinfo(str(info)) == ("AMD EPYC (family 25, model 17)", {"avx2"})
    assert cpu.enable_amx({"avx512_bf16"}) == "no AMX on this CPU"
    assert cpu.bfloat16_path({"avx512_bf16"}) == "AVX512-BF16" and cpu.bfloat16_path({"avx2"}) is None
    # a value the user chose is kept (and reported), never overwritten
    monkeypatch.setenv(cpu.ISA_VARIABLE, "AVX512_CORE_BF16")
    assert cpu.enable_amx({"amx_bf16"}) == "DNNL_MAX_CPU_ISA=AVX512_CORE_BF16 set in the environment"
    assert os.environ[cpu.ISA_VARIABLE] == "AVX512_CORE_BF16"
    assert cpu.bfloat16_path({"amx_bf16", "avx512_bf16"}) == "AVX512-BF16"
    assert cpu.bfloat16_path({"amx_bf16"}, isa="AVX512_CORE_AMX") == "AMX"
    # too late to set it: mxnet (imported by this test session) has read its environment already
    monkeypatch.delenv(cpu.ISA_VARIABLE)
    assert cpu.enable_amx({"amx_bf16"}) == "mxnet was imported before tinyvideo_mx: AMX left off"
    assert cpu.ISA_VARIABLE not in os.environ


def test_amp_says_when_amx_stays_off_on_a_cpu_that_has_it():
    """bfloat16 without AMX on an AMX CPU runs slower than float32: one line says why and what to do."""
    imported = "mxnet was imported before tinyvideo_mx: AMX left off"
    assert precision.amx_warning("bfloat16", imported) == (
        "--amp: this CPU has AMX but it stays off (mxnet was imported before tinyvideo_mx: AMX left off), so "
        "bfloat16 runs on slower kernels than float32 here (docs/performance.md): import tinyvideo_mx before mxnet")
    refused = "the kernel refused the AMX tile permission: AMX left off"
    assert precision.amx_warning("bfloat16", refused).endswith(f"({refused}), so bfloat16 runs on slower kernels "
                                                               "than float32 here (docs/performance.md)")
    assert precision.amx_warning("bfloat16", "DNNL_MAX_CPU_ISA=X, but the kernel refused the AMX tile permission")
    for quiet in ("AMX on", "no AMX on this CPU", "DNNL_MAX_CPU_ISA=AVX512_CORE_BF16 set in the environment"):
        assert precision.amx_warning("bfloat16", quiet) is None
    assert precision.amx_warning(None, imported) is None and precision.amx_warning("float16", imported) is None


@pytest.mark.skipif("amx_bf16" not in open("/proc/cpuinfo").read(), reason="needs a CPU with AMX")
@pytest.mark.parametrize("mxnet_first", [True, False])
def test_amp_warns_a_python_user_who_imported_mxnet_first(mxnet_first):
    """The import order of a Python script, as a user writes it: mxnet first leaves AMX off and --amp's
    precision says so on stderr; tinyvideo_mx first turns AMX on and says nothing."""
    order = "import mxnet as mx; import tinyvideo_mx" if mxnet_first else "import tinyvideo_mx; import mxnet as mx"
    code = (f"{order}; from tinyvideo_mx.runtime.precision import Precision; "
            "Precision(True, [mx.cpu()]).enable()")
    env = {k: v for k, v in os.environ.items() if k != "DNNL_MAX_CPU_ISA"}     # as a fresh shell has it
    if mxnet_first and subprocess.run([sys.executable, "-c", "import mxnet"], capture_output=True, env=env,
                                      timeout=120).returncode:
        pytest.skip("mxnet alone does not import with this numpy (tinyvideo_mx adds the aliases it needs)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    warned = "--amp: this CPU has AMX but it stays off (mxnet was imported before tinyvideo_mx" in out.stderr
    assert warned == mxnet_first, out.stderr[-2000:]


def test_data_gradients_run_as_forward_convolutions_only_for_bfloat16_on_amx(monkeypatch):
    """oneDNN 2.4.4 has AMX kernels for the forward and weight-gradient passes and none for 3-D
    backward-data: the remedy (models/data_gradient.py) is for bfloat16 on AMX only."""
    monkeypatch.delenv("TINYVIDEO_MX_DATA_GRADIENT", raising=False)
    amx, avx512_bf16 = {"avx512f", "avx512_bf16", "amx_bf16"}, {"avx512f", "avx512_bf16"}
    assert precision.data_gradient_by_forward("bfloat16", amx, "AVX512_CORE_AMX")
    assert not precision.data_gradient_by_forward("bfloat16", amx, "AVX512_CORE_BF16")   # AMX switched off
    assert not precision.data_gradient_by_forward("bfloat16", avx512_bf16, "AVX512_CORE_AMX")
    assert not precision.data_gradient_by_forward(None, amx, "AVX512_CORE_AMX")            # float32
    assert not precision.data_gradient_by_forward("float16", amx, "AVX512_CORE_AMX")       # GPU
    monkeypatch.setenv("TINYVIDEO_MX_DATA_GRADIENT", "0")       # the benchmarks' A/B switch
    assert not precision.data_gradient_by_forward("bfloat16", amx, "AVX512_CORE_AMX")
