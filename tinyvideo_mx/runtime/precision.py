"""Mixed precision (``--amp``): MXNet AMP, bfloat16 on CPU, float16 on GPU.

AMP (``mxnet.contrib.amp``) rewrites the operators MXNet builds, process-wide, so it must be switched on
before the networks exist. Its lists decide what runs in low precision: in MXNet 1.9.1 that is
Convolution (D's 3-D convolutions, the conditional encoder, G's layers in phase form) and FullyConnected;
Deconvolution (G's layers in Deconvolution form) and BatchNorm stay float32, and the weights stay float32
(checkpoints are the same as without AMP). Under bfloat16, ``g_form: auto`` takes the phase form.

Two MXNet 1.9.1 problems on CPU shape this module (measured; docs/platform.md):
* a *hybridized* Deconvolution fails in backward once AMP is on ("could not execute a primitive",
  even with no AMP cast in its graph), so with bfloat16 a Deconvolution-form generator runs
  imperatively - it has nothing AMP would run in bfloat16 anyway; the discriminator stays hybridized.
  The phase form (``generator_form``) has no Deconvolution: it runs hybridized and in bfloat16;
* Deconvolution in bfloat16 (adding it to AMP's list) segfaults in oneDNN, so it is not offered.

float16 (GPU) needs loss scaling: every loss head is multiplied by AMP's dynamic loss scale and the
Trainer divides the gradients by it again (and skips the step on overflow), as ``amp.scale_loss`` does.
bfloat16 has float32's range and needs none (scale 1).
"""
import logging
import os

from ..errors import SettingError
from . import cpu, kernels

log = logging.getLogger(__name__)


def cpu_supports_bfloat16(cpuinfo=cpu.CPUINFO):
    """True if the processor has native bfloat16 arithmetic (AVX512-BF16 or AMX-BF16)."""
    return cpu.has_bfloat16(cpu.read_cpuinfo(cpuinfo)[1])


def amp_dtype(contexts):
    """The low-precision type AMP uses on these contexts."""
    kinds = {c.device_type for c in contexts}
    if kinds == {"gpu"}:
        return "float16"
    if kinds == {"cpu"}:
        if not cpu_supports_bfloat16():
            raise SettingError("--amp on CPU needs a processor with bfloat16 arithmetic (avx512_bf16 or amx_bf16 "
                             "in /proc/cpuinfo); this one has neither: train without --amp")
        return "bfloat16"
    raise SettingError("--amp needs all contexts of one kind (all cpu or all gpu)")


# The phase forms pay at the original's widths and not at the demo's: full size (ndf 64, D) about 10 % per
# step, the demo preset (ndf 16 on 32x32 frames) 3.87 against 3.90 iterations/s (docs/performance.md)
PHASE_FORM_MIN_WIDTH = 64


def generator_form(requested, dtype=None, flags=None, device=None, ngf=0):
    """How G computes its transposed convolutions (``TrainConfig.g_form``; networks.TRANSPOSED_FORMS) when
    its arithmetic is ``dtype`` (None: float32). "auto" takes the form measured faster (full size, one run
    each, docs/performance.md): under bfloat16 the phase form, whose convolutions run in bfloat16 and
    hybridized (AMD EPYC with avx512_bf16: 1.88 s against 2.13 s per step for the float32, imperative
    Deconvolutions); in float32 for training on a CPU without AVX-512 (``device`` "cpu", ``flags`` its
    /proc/cpuinfo flags) and a G at least PHASE_FORM_MIN_WIDTH wide, the phase form too, whose passes run on
    direct AVX2 kernels where Deconvolution's forward runs on GEMM (AMD EPYC, AVX2 only, D in phase form,
    three rounds: batch 16 12.05-12.36 s against 13.35-13.58 s per step, batch 8 6.14-6.60 s against
    6.49-6.76 s); Deconvolution elsewhere: with AVX-512 (2.50 s against 2.77 s),
    for float16 (GPU), and where no device is named (sampling, export, serving)."""
    if requested != "auto":
        return requested
    if dtype == "bfloat16":
        return "phases"
    return "phases" if _float32_phases_pay(dtype, flags, device, ngf) else "deconvolution"


def discriminator_form(requested, dtype=None, flags=None, device="cpu", ndf=64):
    """How D computes its stride-2 convolutions (``TrainConfig.d_form``; networks.STRIDED_FORMS): "auto"
    takes the phase form in float32 on CPUs without AVX-512, where the strided backward passes run on
    GEMM (``cpu.direct_strided_backward``), for a D at least PHASE_FORM_MIN_WIDTH wide; the strided
    Convolution elsewhere. ``flags``: the CPU's (None: this machine's /proc/cpuinfo)."""
    if requested != "auto":
        return requested
    return "phases" if _float32_phases_pay(dtype, flags, device, ndf) else "strided"


def _float32_phases_pay(dtype, flags, device, width):
    """Whether a network ``width`` channels wide trains faster in phase form: in float32 on a CPU whose
    strided backward passes (and Deconvolution's forward, the same primitive) run on GEMM, at least
    PHASE_FORM_MIN_WIDTH wide. ``flags``: the CPU's (None: this machine's /proc/cpuinfo)."""
    if device != "cpu" or dtype is not None or width < PHASE_FORM_MIN_WIDTH:
        return False
    return not cpu.direct_strided_backward(kernels.flags_in_force(flags))


def data_gradient_by_forward(dtype, flags=None, isa=None):
    """True where the 3-D data gradients should avoid oneDNN's bfloat16 backward-data kernel
    (models/data_gradient.py: G's phase layers as forward convolutions, D's strided layers as float32
    transposed ones): bfloat16 on AMX, where oneDNN 2.4.4 has AMX kernels for the forward and
    weight-gradient passes but none for backward-data. ``flags``: the CPU's (None: this machine's)."""
    if os.environ.get("TINYVIDEO_MX_DATA_GRADIENT") in ("0", "1"):      # A/B measurement (bench/)
        return os.environ["TINYVIDEO_MX_DATA_GRADIENT"] == "1"
    return dtype == "bfloat16" and cpu.bfloat16_path(kernels.flags_in_force(flags), isa) == "AMX"


def amx_warning(dtype, decision=None):
    """One line for a bfloat16 run on an AMX CPU whose AMX kernels stay off (``cpu.amx_left_off``), or None:
    there bfloat16 runs on ``jit_bf16`` kernels, slower than float32 for VGAN's 3-D convolutions
    (docs/performance.md) - most often because ``mxnet`` was imported before ``tinyvideo_mx``."""
    reason = cpu.amx_left_off(decision)
    if dtype != "bfloat16" or reason is None:
        return None
    hint = ": import tinyvideo_mx before mxnet" if "imported before" in reason else ""
    return (f"--amp: this CPU has AMX but it stays off ({reason}), so bfloat16 runs on slower kernels than float32 "
            f"here (docs/performance.md){hint}")


class Precision:
    """float32 (``enabled=False``) or AMP on ``contexts``. Call ``enable()`` before building networks."""

    def __init__(self, enabled, contexts):
        self.dtype = amp_dtype(contexts) if enabled else None
        self._scalers = {}

    @property
    def enabled(self):
        return self.dtype is not None

    def hybridize_generator(self, form):
        """False for a G holding Deconvolutions under bfloat16 AMP (their hybridized backward fails): the
        Deconvolution form."""
        return not (self.dtype == "bfloat16" and form == "deconvolution")

    def enable(self):
        if self.enabled:
            from mxnet.contrib import amp
            amp.init(target_dtype=self.dtype)      # idempotent: a second call in one process does nothing
            log.info("AMP on: %s", self.dtype)
            warning = amx_warning(self.dtype)
            if warning:
                log.warning(warning)

    def attach(self, trainers):
        """Give each trainer AMP's dynamic loss scaler (float16 only)."""
        if self.dtype == "float16":
            from mxnet.contrib import amp
            for name, trainer in trainers.items():
                amp.init_trainer(trainer)
                self._scalers[name] = trainer

    def loss_scale(self, name):
        """The factor for this step's loss heads of trainer ``name``; the trainer is told to divide it out."""
        trainer = self._scalers.get(name)
        if trainer is None:
            return 1.0
        scale = trainer._amp_loss_scaler.loss_scale
        trainer._scale = trainer._amp_original_scale / scale    # what amp.scale_loss does
        return scale
