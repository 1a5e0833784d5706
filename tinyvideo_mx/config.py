"""Training configuration. Defaults are the original's (main.lua); presets shrink the model for CPU."""
import dataclasses
import json
import math

from .errors import SettingError

G_STEP_MODES = ("reuse", "recompute")
RENAMED = {"num_workers": "decode_threads"}   # old key -> new key, so older runs still load
UPSAMPLING = ("transposed", "resize")   # how G doubles its resolution: see networks.up3d
G_FORMS = ("auto", "deconvolution", "phases")   # how G's transposed convolutions are computed: precision.generator_form
D_FORMS = ("auto", "strided", "phases")         # how D's stride-2 convolutions are computed: precision.discriminator_form
# what G's 3-D resize-convolutions read beyond the first and last frames: "zeros" (as every convolution of
# the original pads) or "replicate" (copies of the end frames; layers.ResizeConvolution)
TEMPORAL_PADDINGS = ("zeros", "replicate")
# which of oneDNN's kernels the networks compute on: the fastest this CPU has, or AVX2's on every CPU, where
# a run draws the same samples on every AMD CPU with AVX2 (an Intel CPU's caches order some sums otherwise;
# runtime/kernels.py)
KERNELS = ("native", "avx2")


def check_temporal_padding(temporal_padding, upsampling):
    """Replicated end frames exist only for the resize-convolution (layers.ResizeConvolution)."""
    if temporal_padding not in TEMPORAL_PADDINGS:
        raise SettingError(f"temporal_padding must be one of {TEMPORAL_PADDINGS}, got {temporal_padding!r}")
    if temporal_padding != "zeros" and upsampling != "resize":
        raise SettingError(f"temporal_padding {temporal_padding!r} needs upsampling 'resize' (the original's "
                           "transposed convolutions have no padding to replace)")
    return temporal_padding


def check_fall_before_end(lr_fall_from, total):
    """Falling rates whose end is the run's own (no lr_fall_until) must start before it."""
    if lr_fall_from >= total:
        raise SettingError(f"lr_fall_from ({lr_fall_from}) must come before the run's end (iteration {total}), "
                           "or give lr_fall_until")


def check_upsampling(upsampling):
    if upsampling not in UPSAMPLING:
        raise SettingError(f"upsampling must be one of {UPSAMPLING}, got {upsampling!r}")
    return upsampling


@dataclasses.dataclass
class TrainConfig:
    # data
    data_list: str = None          # None: the embedded synthetic dataset
    data_root: str = None          # None: the list file's folder
    frame_height: int = 128        # rows per frame on disk
    synthetic_clips: int = 256
    sampling: str = "replacement"  # original: batches drawn with replacement
    decode_threads: int = 2        # threads decoding JPEG strips for the DataIter
    cache_mb: int = 1024           # decoded clips kept in memory (MiB; 0: decode every time): exact, faster
    max_bad: int = 50
    # model
    model: str = "unconditional"   # or "conditional" (main_conditional.lua)
    frames: int = 32
    size: int = 64
    nz: int = 100
    ngf: int = 64
    ndf: int = 64
    upsampling: str = "transposed" # generator: the original's stride-2 transposed convolutions, or "resize"
    cond_noise: int = 0            # conditional only: z size joined to the code (0 = none, faithful)
    g_form: str = "auto"           # G's transposed convolutions as Deconvolution or as phase Convolutions: the
                                   # same function and parameters; "auto" takes the faster (runtime/precision.py)
    d_form: str = "auto"           # D's stride-2 convolutions as strided Convolutions or as stride-1 ones on the
                                   # input's phases: the same function and parameters; "auto" as g_form
    temporal_padding: str = "zeros"  # resize upsampling only: "replicate" extends G's frames by copies of
                                     # the end frames instead of zeros (TEMPORAL_PADDINGS)
    # optimisation
    batch_size: int = 64
    lr: float = 2e-4
    d_lr: float = None             # D's Adam learning rate; None: lr, as the original (one optimState for both)
    beta1: float = 0.5
    beta2: float = 0.999
    epsilon: float = 1e-8
    mask_penalty: float = 0.1      # 0.1 * mean(m) (L1Penalty(0.1, sizeAverage=true))
    mask_penalty_until: int = None  # the prior falls linearly to 0 at this iteration; None: constant (the original)
    mask_bias: float = 0.0         # the mask channel's initial bias: the mask starts at sigmoid(this) (the
                                   # original's zero bias: 0.5, fore- and background mixed half and half)
    background_size: int = None    # the background stream's scene as this many control points per side,
                                   # bilinearly stretched to the frame; None: drawn pixel by pixel (the original)
    # regularisers of D, all off in the original (training/losses.py, training/step.py)
    instance_noise: float = 0.0    # std of Gaussian noise added to every clip D sees, falling linearly to 0
    instance_noise_until: int = None   # ... at this iteration; None: the run's length when it starts (then saved,
                                       # so a resumed run that is extended keeps the schedule it began with)
    label_smoothing: float = 0.0   # one-sided: D's target for real clips is 1 - this (fakes stay 0)
    minibatch_std: bool = False    # D's last layer also sees the batch's feature spread (networks.with_batch_spread)
    # learning rates that fall over the last iterations, off in the original (step.falling_rate)
    lr_fall_from: int = None       # from this iteration the rates named by lr_end / d_lr_end fall linearly ...
    lr_fall_until: int = None      # ... reaching them at this iteration; None: the run's length when it starts (then
                                   # saved, so a resumed run that is extended keeps the schedule it began with)
    lr_end: float = None           # G's rate at lr_fall_until; None: G's rate does not fall
    d_lr_end: float = None         # D's rate at lr_fall_until; None: D's rate does not fall
    # a regulariser of G, off in the original (losses.mode_seeking)
    mode_seeking: float = 0.0      # weight of 1 / (|G(z1) - G(z2)| / |z1 - z2|) over pairs of the batch
    l1_weight: float = 10.0        # conditional only: 10 * mean|G(x0)[:, :, 0] - x0|
    g_ema: float = 0.0             # >0: sample from a moving average of G's weights with this decay (training/averaging.py)
    g_step: str = "reuse"          # "reuse": the original's G step; "recompute": a fresh D(G(z)) after D's update
    iterations: int = None         # None: 100 epochs of floor(#clips / batch) iterations, as niter = 100
    seed: int = 0
    # run
    ctx: str = "cpu"
    kvstore: str = "device"
    hybridize: bool = True
    amp: bool = False              # MXNet AMP: bfloat16 on CPU, float16 on GPU (runtime/precision.py)
    kernels: str = "native"        # oneDNN's kernels (KERNELS): "avx2": the same samples on AMD CPUs
    checkpoint_every: int = 1000
    sample_every: int = 100
    log_every: int = 10
    keep_checkpoints: int = 3
    # FVD during training (0: off): every fvd_every iterations, fvd_samples clips of a fixed z set
    # against as many training clips (their statistics cached in the run folder)
    fvd_every: int = 0
    fvd_i3d_weights: str = None
    fvd_i3d_input: str = "imagenet"
    fvd_samples: int = 256

    def __post_init__(self):
        if self.g_step not in G_STEP_MODES:
            raise SettingError(f"g_step must be one of {G_STEP_MODES}, got {self.g_step!r}")
        if self.fvd_every and not self.fvd_i3d_weights:
            raise SettingError("FVD during training (fvd_every) needs I3D weights (--fvd-i3d-weights FILE)")
        if not 0.0 <= self.g_ema < 1.0:
            raise SettingError(f"g_ema (the decay of G's weight average) must be in [0, 1), got {self.g_ema}")
        check_upsampling(self.upsampling)
        check_temporal_padding(self.temporal_padding, self.upsampling)
        if self.d_lr is not None and not self.d_lr > 0:
            raise SettingError(f"d_lr (D's learning rate) must be positive, got {self.d_lr}")
        if not self.instance_noise >= 0:
            raise SettingError(f"instance_noise must be >= 0, got {self.instance_noise}")
        for name in ("mask_penalty_until", "instance_noise_until"):     # None: constant / the run's length
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise SettingError(f"{name} must be >= 1, got {getattr(self, name)}")
        self._check_falling_rates()
        if not 0.0 <= self.label_smoothing < 0.5:
            raise SettingError(f"label_smoothing must be in [0, 0.5), got {self.label_smoothing}")
        if not (isinstance(self.cache_mb, int) and self.cache_mb >= 0):
            raise SettingError(f"cache_mb must be a whole number >= 0, got {self.cache_mb!r}")
        if self.g_form not in G_FORMS:
            raise SettingError(f"g_form must be one of {G_FORMS}, got {self.g_form!r}")
        if self.d_form not in D_FORMS:
            raise SettingError(f"d_form must be one of {D_FORMS}, got {self.d_form!r}")
        if self.kernels not in KERNELS:
            raise SettingError(f"kernels must be one of {KERNELS}, got {self.kernels!r}")
        if self.amp and self.kernels != "native" and "gpu" not in self.ctx:
            raise SettingError(f"amp needs kernels 'native' (--kernels native): oneDNN's bfloat16 kernels are AVX-512's, not "
                               f"{self.kernels.upper()}'s")
        if self.model not in ("unconditional", "conditional"):
            raise SettingError(f"model must be 'unconditional' or 'conditional', got {self.model!r}")
        if not self.mode_seeking >= 0:
            raise SettingError(f"mode_seeking must be >= 0, got {self.mode_seeking}")
        if not self.mask_penalty >= 0:
            raise SettingError(f"mask_penalty must be >= 0, got {self.mask_penalty}")
        if not math.isfinite(self.mask_bias):
            raise SettingError(f"mask_bias must be a finite number, got {self.mask_bias}")
        if self.background_size is not None and not (
                isinstance(self.background_size, int) and 1 <= self.background_size <= self.size
                and self.size % self.background_size == 0):
            raise SettingError(f"background_size must divide the frame size {self.size}, got {self.background_size!r}")
        for name in ("checkpoint_every", "log_every"):    # sample_every and fvd_every take 0 for never
            if not (isinstance(getattr(self, name), int) and getattr(self, name) >= 1):
                raise SettingError(f"{name} must be a whole number >= 1, got {getattr(self, name)!r}")
        if self.is_conditional and (self.minibatch_std or self.mode_seeking or self.temporal_padding != "zeros"
                                    or self.mask_bias or self.mask_penalty_until or self.background_size):
            raise SettingError("minibatch_std, mode_seeking, temporal_padding, mask_bias, mask_penalty_until and "
                               "background_size are options of the unconditional model")

    def _check_falling_rates(self):
        ends = {name: getattr(self, name) for name in ("lr_end", "d_lr_end") if getattr(self, name) is not None}
        if self.lr_fall_from is None:
            if ends or self.lr_fall_until is not None:
                named = list(ends) or ["lr_fall_until"]
                raise SettingError(f"{' and '.join(named)} {'need' if len(named) > 1 else 'needs'} lr_fall_from (the "
                                   "iteration the learning rates start to fall at)")
            return
        if not (isinstance(self.lr_fall_from, int) and self.lr_fall_from >= 0):
            raise SettingError(f"lr_fall_from must be a whole number >= 0, got {self.lr_fall_from!r}")
        if not ends:
            raise SettingError("lr_fall_from needs lr_end or d_lr_end (the rate G's or D's learning rate falls to)")
        for name, value in ends.items():
            if not (math.isfinite(value) and value >= 0):
                raise SettingError(f"{name} must be a finite number >= 0, got {value}")
        if self.lr_fall_until is not None and not self.lr_fall_until > self.lr_fall_from:
            raise SettingError(f"lr_fall_until ({self.lr_fall_until}) must come after lr_fall_from ({self.lr_fall_from})")
        if self.lr_fall_until is None and self.iterations is not None:
            check_fall_before_end(self.lr_fall_from, self.iterations)

    @property
    def rates(self):
        """Adam's starting learning rates: {"G": lr, "D": d_lr, or lr as the original}."""
        return {"G": self.lr, "D": self.d_lr or self.lr}

    @property
    def is_conditional(self):
        """The image-to-video model (main_conditional.lua) rather than the unconditional one."""
        return self.model == "conditional"

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        values = {RENAMED.get(k, k): v for k, v in values.items()}   # configurations saved before a rename
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise SettingError(f"unknown configuration keys: {sorted(unknown)}")
        return cls(**values)

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


# "original" is the paper's recipe exactly. "demo" shrinks it for 2 CPU cores and changes seven things
# the studies in docs/learning.md chose, each listed in docs/deviations.md with its measured effect:
# resize-convolutions in G (no checkerboard), sampling from a moving average of G's weights (steadier
# samples), 1024 built-in clips instead of 256, D seeing the batch's spread and G paying for alike clips
# (no collapse to a few backgrounds), a stronger mask prior (the mask keeps the foreground's texture off
# the scene), and G learning three times as fast as D (whole objects over banded backgrounds by 1000
# updates, which the original rate draws by 2000). "tiny" runs in seconds, for tests.
DEMO_DEVIATIONS = dict(upsampling="resize", g_ema=0.999, synthetic_clips=1024, minibatch_std=True, mode_seeking=2.0,
                       mask_penalty=1.0, lr=6e-4, d_lr=2e-4)
PRESETS = {
    "original": {},
    # 16 frames of 32x32, quarter widths, 800 iterations of batch 16 (1000 drew the same look, a longer wait:
    # docs/learning.md, eighteenth study): README command 1 in the minutes the README states, measured in quiet
    # hours and estimated for the slowest hour seen (README, "How long the first command takes")
    # AVX2's kernels on every CPU, so that its samples and its table are the README's on any AMD CPU of 2
    # cores (runtime/kernels.py, which says why Intel CPUs draw others; not a change of recipe, the same
    # arithmetic summed in one order)
    "demo": dict(frames=16, size=32, ngf=16, ndf=16, batch_size=16, iterations=800,
                 sample_every=400, checkpoint_every=400, log_every=20, kernels="avx2", **DEMO_DEVIATIONS),
    # seconds: for tests and smoke runs
    "tiny": dict(frames=16, size=16, ngf=8, ndf=8, batch_size=4, iterations=4, synthetic_clips=16,
                 sample_every=2, checkpoint_every=2, log_every=1, decode_threads=1),
}


def make_config(preset="original", **overrides):
    if preset not in PRESETS:
        raise SettingError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
    values = dict(PRESETS[preset])
    values.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig(**values)
