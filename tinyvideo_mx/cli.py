"""The ``tinyvideo-mx`` command: a thin face over the library (each command calls one function)."""
import logging
import os
import sys
import warnings

import click

# MXNet-free: the CLI starts without it
from .config import G_STEP_MODES, KERNELS, TEMPORAL_PADDINGS, UPSAMPLING, make_config

warnings.filterwarnings("ignore", category=DeprecationWarning)   # mxnet 1.9.1 on numpy 1.23 / Python 3.11


class _CurrentStderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a record is emitted (a test runner may swap it), through tqdm: a
    progress bar drawn there (training's, the stabiliser's) steps aside for the line and is drawn again below
    it, where a plain write would glue the message to the end of the bar."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _):
        pass

    def emit(self, record):
        try:
            from tqdm import tqdm
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:       # noqa: BLE001 - logging's own convention: report, never raise
            self.handleError(record)


# The loggers the commands' console lines come from: the package's, and the stabiliser's (a package of its own).
CONSOLE_LOGGERS = ("tinyvideo_mx", "stabilize")


def _setup_logging(run_dir=None, verbose=False):
    for name in CONSOLE_LOGGERS:
        console_logger = logging.getLogger(name)
        console_logger.setLevel(logging.DEBUG if verbose else logging.INFO)
        if not any(isinstance(h, _CurrentStderr) for h in console_logger.handlers):
            console = _CurrentStderr()
            console.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
            console.setLevel(logging.WARNING if not verbose else logging.DEBUG)
            console_logger.addHandler(console)
    logger = logging.getLogger("tinyvideo_mx")
    if run_dir:
        # One run log at a time: the previous run's (an earlier command in this process) is closed, so
        # handlers do not pile up, nor write to a folder that is gone or a disk that filled since.
        for old in [h for h in logger.handlers if isinstance(h, _RunLog)]:
            logger.removeHandler(old)
            old.close()
        os.makedirs(run_dir, exist_ok=True)
        handler = _RunLog(os.path.join(run_dir, "train.log"))
        # The process id tells the workers of a distributed run apart (they share the run folder).
        handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)


class _RunLog(logging.FileHandler):
    """The run folder's train.log."""


class FriendlyErrors(click.Group):
    """Expected failures (the TinyVideoError family: bad data, bad checkpoints, bad settings, a full
    disk) end with one clear line and exit status 1; anything else is a bug and keeps its traceback."""

    def invoke(self, ctx):
        from .errors import TinyVideoError
        try:
            return super().invoke(ctx)
        except TinyVideoError as e:
            raise click.ClickException(str(e)) from e


POSITIVE = click.IntRange(min=1)
NON_NEGATIVE = click.IntRange(min=0)
POSITIVE_FLOAT = click.FloatRange(min=0, min_open=True)


def multiple_of_16(ctx, param, value):
    """--frames / --size: the networks keep four stride-2 stages, so 16, 32, 48..."""
    if value is not None and (value < 16 or value % 16):
        raise click.BadParameter(f"{value} is not a positive multiple of 16 (16, 32, 48, 64...)")
    return value


def gpu_contexts_usable(ctx, param, value):
    """--ctx: a GPU this install cannot use fails here, in one line, before MXNet or a network is loaded."""
    if value is not None:
        from .errors import SettingError
        from .runtime.gpu_support import check_gpu_contexts
        try:
            check_gpu_contexts(value)
        except SettingError as e:
            raise click.ClickException(str(e)) from None
    return value


def output_prefix(ctx, param, value):
    """export --out names files (PREFIX-symbol.json...), so it must not be a folder."""
    if value is not None and (value.endswith(os.sep) or value.endswith("/") or os.path.isdir(value)):
        raise click.BadParameter(f"{value!r} is a folder; give a file prefix such as {os.path.join(value, 'vgan')}")
    return value


@click.group(cls=FriendlyErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tinyvideo-mx")
def main():
    """tinyvideo-mx: Generating Videos with Scene Dynamics (VGAN) in MXNet Gluon.

    \b
    Quick start (trains briefly on the built-in synthetic data, then samples):
      tinyvideo-mx train --preset demo --out runs/demo
      tinyvideo-mx sample runs/demo --out runs/demo/samples
    """


# Set in every process of a distributed job (MXNet's launcher / ps-lite, Horovod, MPI)
DISTRIBUTED_RANK_VARIABLES = ("DMLC_ROLE", "HOROVOD_RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK")


@main.command()
@click.option("--data", "data_list", type=click.Path(), default=None,
              help="List file of JPEG strips (one path per line). Default: the built-in synthetic dataset.")
@click.option("--data-root", type=click.Path(), default=None,
              help="Folder the list's paths are relative to (default: the list's folder).")
@click.option("--out", "run_dir", type=click.Path(), default="runs/vgan", show_default=True,
              help="Run folder: checkpoints, logs, samples.")
@click.option("--preset", type=click.Choice(["original", "demo", "tiny"]), default="original", show_default=True,
              help="original = the paper's recipe; demo = minutes of training on 2 CPU cores (smaller, plus the "
                   "deviations in docs/deviations.md); tiny = seconds (smoke tests).")
@click.option("--conditional", is_flag=True, help="Train the image-to-video model (main_conditional.lua).")
@click.option("--cond-noise", type=NON_NEGATIVE, default=None,
              help="Conditional only: join a z of this size to the code for stochastic futures (0, as the original).")
@click.option("--iterations", type=POSITIVE, default=None, help="Total iterations (default: 100 epochs, as niter=100).")
@click.option("--batch-size", type=POSITIVE, default=None)
@click.option("--lr", type=POSITIVE_FLOAT, default=None,
              help="G's Adam learning rate, and D's unless --d-lr is given (2e-4; demo 6e-4).")
@click.option("--frames", type=int, default=None, callback=multiple_of_16, help="Frames per clip, a multiple of 16 (32).")
@click.option("--size", type=int, default=None, callback=multiple_of_16, help="Frame size, a multiple of 16 (64).")
@click.option("--frame-height", type=POSITIVE, default=None, help="Rows per frame in the strips on disk (128).")
@click.option("--ngf", type=POSITIVE, default=None, help="Generator base width (64; conditional 128).")
@click.option("--ndf", type=POSITIVE, default=None, help="Discriminator base width (64; conditional 128).")
@click.option("--g-step", type=click.Choice(G_STEP_MODES), default=None,
              help="reuse (original): G step reuses the D-step forward; recompute: fresh D(G(z)) after D's update.")
@click.option("--synthetic-clips", type=POSITIVE, default=None,
              help="Clips in the built-in dataset when no data list is given (256; demo 1024).")
@click.option("--upsampling", type=click.Choice(UPSAMPLING), default=None,
              help="Generator doubling: transposed (original) or resize = nearest + 3x3 convolution (demo; docs/deviations.md).")
@click.option("--temporal-padding", type=click.Choice(TEMPORAL_PADDINGS), default=None,
              help="With --upsampling resize: G's convolutions read zeros (original) or copies of the end "
              "frames (replicate) beyond the first and last frames.")
@click.option("--d-lr", type=POSITIVE_FLOAT, default=None,
              help="D's Adam learning rate (default: --lr, as the original; demo 2e-4).")
@click.option("--lr-fall-from", type=NON_NEGATIVE, default=None,
              help="From this iteration the rates --lr-end / --d-lr-end name fall linearly, reaching them at "
              "--lr-fall-until (default: constant rates, as the original).")
@click.option("--lr-fall-until", type=POSITIVE, default=None,
              help="Iteration at which falling rates reach --lr-end / --d-lr-end (default: the run's length).")
@click.option("--lr-end", type=click.FloatRange(min=0.0), default=None,
              help="With --lr-fall-from: G's learning rate at --lr-fall-until (default: G's rate does not fall).")
@click.option("--d-lr-end", type=click.FloatRange(min=0.0), default=None,
              help="With --lr-fall-from: D's learning rate at --lr-fall-until (default: D's rate does not fall).")
@click.option("--instance-noise", type=click.FloatRange(min=0.0), default=None,
              help="Std of Gaussian noise added to every clip D sees, falling linearly to 0 (0: off, as the original).")
@click.option("--instance-noise-until", type=POSITIVE, default=None,
              help="Iteration at which the instance noise reaches 0 (default: the run's length).")
@click.option("--label-smoothing", type=click.FloatRange(0.0, 0.5, max_open=True), default=None,
              help="One-sided: D's target for real clips is 1 minus this (0: off, as the original).")
@click.option("--minibatch-std", is_flag=True, default=None,
              help="D's last layer also sees how alike the batch's clips are (off in the original).")
@click.option("--mode-seeking", type=click.FloatRange(min=0.0), default=None,
              help="Weight of G's mode-seeking term: G loses this much / (how far apart two clips are per unit "
              "of z distance), over pairs of the batch (0: off, as the original; demo 2).")
@click.option("--mask-penalty", type=click.FloatRange(min=0.0), default=None,
              help="Weight of the mask prior: G pays this times the mask's mean (the original's 0.1; demo 1.0).")
@click.option("--mask-penalty-until", type=POSITIVE, default=None,
              help="Iteration at which the mask prior has fallen linearly to 0 (default: constant, as the original).")
@click.option("--mask-bias", type=float, default=None,
              help="Initial bias of the mask channel: the mask starts at sigmoid(this) (the original's 0: 0.5).")
@click.option("--background-size", type=POSITIVE, default=None,
              help="Draw the background as this many control points per side, bilinearly stretched to the frame "
                   "(must divide --size; default: pixel by pixel, as the original).")
@click.option("--g-ema", type=click.FloatRange(0.0, 1.0, max_open=True), default=None,
              help="Sample from a moving average of G's weights with this decay (0: off, as the original; demo 0.999).")
@click.option("--sampling", type=click.Choice(["replacement", "shuffle", "sequential"]), default=None,
              help="Batch sampling (original: replacement).")
@click.option("--ctx", default=None, callback=gpu_contexts_usable,
              help="Contexts: cpu, cpu0,cpu1, gpu0 or gpu0,gpu1,... (data parallel; see 'tinyvideo-mx doctor').")
@click.option("--kvstore", type=click.Choice(["device", "local", "dist_sync", "dist_device_sync", "horovod"]),
              default=None, help="How replicas agree: device/local within this process (default device); "
              "dist_sync/dist_device_sync across processes started by 'tinyvideo-mx launch'; horovod under horovodrun.")
@click.option("--horovod", is_flag=True, help="Same as --kvstore horovod (run under horovodrun; optional extra).")
@click.option("--checkpoint-every", type=POSITIVE, default=None)
@click.option("--sample-every", type=NON_NEGATIVE, default=None, help="Write sample grids every N iterations (0: never).")
@click.option("--max-bad", type=NON_NEGATIVE, default=None, help="Abort after this many distinct unusable clips (50).")
@click.option("--decode-threads", "--workers", "decode_threads", type=POSITIVE, default=None,
              help="Threads decoding JPEG strips (2; --workers is its old name).")
@click.option("--cache-mb", type=NON_NEGATIVE, default=None,
              help="Keep decoded clips in memory up to this many MiB (1024; 0: decode every time).")
@click.option("--seed", type=NON_NEGATIVE, default=None)
@click.option("--resume", "resume", type=click.Path(exists=True), default=None,
              help="Continue exactly from a run folder or checkpoint folder (other options may extend --iterations).")
@click.option("--fvd-every", type=NON_NEGATIVE, default=None, help="Compute FVD every N iterations (needs --fvd-i3d-weights).")
@click.option("--fvd-i3d-weights", type=click.Path(exists=True), default=None, help="I3D weights for FVD during training.")
@click.option("--fvd-samples", type=click.IntRange(min=2), default=None, help="Clips per FVD during training (256).")
@click.option("--amp", is_flag=True, default=None,
              help="Mixed precision (MXNet AMP): bfloat16 on CPU (needs avx512_bf16), float16 on GPU.")
@click.option("--kernels", type=click.Choice(KERNELS), default=None,
              help="oneDNN's kernels: native = the fastest this CPU has (default); avx2 = AVX2's on every CPU, "
              "so the run draws the same samples on any AMD CPU (demo; slower with AVX-512; doctor says "
              "whether this machine draws the README's table).")
@click.option("--no-hybridize", is_flag=True, help="Run the networks imperatively (debugging).")
@click.option("--overwrite", is_flag=True,
              help="--out already holds a run: move it aside to <out>.old-<time> and start afresh (nothing is deleted).")
@click.option("--steal-lock", is_flag=True,
              help="Take the run folder even if another host's trainer holds it (only when that one is known to be gone).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train(**options):
    """Train VGAN (two-stream generator vs 3-D discriminator) on strips or the built-in data."""
    owned, resume, steal_lock = None, options["resume"], options["steal_lock"]
    if resume and not options["horovod"] and not any(v in os.environ for v in DISTRIBUTED_RANK_VARIABLES):
        # Claim the run before MXNet loads (seconds): a second trainer is refused at once. The trainer
        # claims it again (re-entrant) and releases it at the end. In a distributed job the rank is known
        # only once MXNet runs, so there rank 0 claims it inside the trainer.
        from . import checkpoint, run_folder
        options["resume"] = checkpoint.open_checkpoint(resume)      # verified once, here
        owned = os.path.dirname(os.path.abspath(options["resume"].folder))
        run_folder.take_ownership(owned, "--resume", steal=steal_lock)
    try:
        _train(**options)
    finally:
        if owned:
            from . import run_folder
            run_folder.release_ownership(owned)


def _train(run_dir, preset, conditional, horovod, resume, no_hybridize, overwrite, steal_lock, quiet, **settings):
    """``settings``: every other option of ``train``, each named as the TrainConfig field it sets (None: not
    given, the preset's value stands)."""
    from .training import GanTraining
    if horovod:
        if settings["kvstore"] not in (None, "horovod"):
            raise click.UsageError(f"--horovod and --kvstore {settings['kvstore']} contradict each other")
        settings["kvstore"] = "horovod"
    _setup_logging()     # console now; the run's train.log once the run folder is settled
    if resume:
        run = GanTraining.resume(resume, progress=not quiet, iterations=settings["iterations"], steal_lock=steal_lock)
    else:
        if conditional:
            from .conditional import conditional_overrides
            settings = conditional_overrides(preset, settings)
        if no_hybridize:
            settings["hybridize"] = False
        run = GanTraining(make_config(preset, **settings), run_dir, progress=not quiet, overwrite=overwrite,
                          steal_lock=steal_lock)
    if run.replicas.is_chief:
        _setup_logging(run.run_dir)
    run.run()
    if run.checkpoint_failures:
        raise click.ClickException(
            f"trained {run.iteration} iterations, but {run.checkpoint_failures} checkpoint write(s) failed "
            f"(last: {run.last_checkpoint_error}); the newest intact checkpoint is the one to resume from")
    click.echo(f"trained {run.iteration} iterations; checkpoints in {run.run_dir}")


@main.command(context_settings={"ignore_unknown_options": True})
@click.option("-n", "--workers", type=POSITIVE, default=2, show_default=True,
              help="Worker processes of the distributed job (its ranks; MXNet's DMLC_NUM_WORKER).")
@click.option("-s", "--servers", type=POSITIVE, default=1, show_default=True, help="Parameter-server processes.")
@click.option("--hosts", type=click.Path(exists=True, dir_okay=False), default=None,
              help="File with one host (an address every host can reach) per line: print the ssh commands for a "
              "cluster run instead of running locally.")
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="Scheduler port (default: a free port; 9091 with --hosts).")
@click.option("--timeout", type=POSITIVE_FLOAT, default=None, help="Stop every process after this many seconds.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, required=True)
def launch(workers, servers, hosts, port, timeout, command):
    """Run COMMAND as the workers of a dist_sync job, with a scheduler and parameter servers.

    \b
    Local (every process on 127.0.0.1; all are stopped if one worker fails):
      tinyvideo-mx launch -n 2 -s 1 -- tinyvideo-mx train --kvstore dist_sync --out runs/dist
    Cluster (prints one ssh command per process; the first host runs the scheduler):
      tinyvideo-mx launch -n 4 -s 2 --hosts hosts.txt -- tinyvideo-mx train --kvstore dist_sync ...
    """
    from .training import launch as launcher
    if hosts:
        for line in launcher.cluster_commands(command, launcher.read_hosts(hosts), workers, servers, port or 9091):
            click.echo(line)
        return
    try:
        code = launcher.launch_local(command, workers, servers, timeout=timeout, port=port)
    except launcher.LaunchError as e:
        raise click.ClickException(str(e)) from e
    if code:
        raise click.ClickException(f"a worker failed with exit status {code}; all processes were stopped")


@main.command()
@click.argument("checkpoint", type=click.Path(exists=True))
@click.option("--out", "out_dir", type=click.Path(), default=None, help="Output folder (default: <run>/samples-seed<N>).")
@click.option("-n", "--num", "n", type=POSITIVE, default=16, show_default=True, help="Number of videos.")
@click.option("--seed", type=NON_NEGATIVE, default=0, show_default=True, help="Latent seed: same seed, same videos.")
@click.option("--interpolate", type=int, nargs=2, default=None, metavar="SEED_A SEED_B",
              help="Also write a latent walk between the first clips of two seeds.")
@click.option("--steps", type=click.IntRange(min=2), default=8, show_default=True, help="Points on the latent walk.")
@click.option("--fps", type=POSITIVE_FLOAT, default=25, show_default=True)
@click.option("--scale", type=click.IntRange(1, 16), default=2, show_default=True,
              help="Nearest-neighbour enlargement of the written videos.")
@click.option("--normalize", type=click.Choice(["none", "frame"]), default="none", show_default=True,
              help="frame: stretch each frame to its min..max, like generate.lua's display.")
@click.option("--conditional", is_flag=True, help="Conditional model: predict the future of --image files.")
@click.option("--image", "images", multiple=True, type=click.Path(), help="Input image(s) for --conditional (repeatable).")
@click.option("--ctx", default="cpu", show_default=True, callback=gpu_contexts_usable, help="Device: cpu or gpuN.")
def sample(checkpoint, out_dir, n, seed, interpolate, steps, fps, scale, normalize, conditional, images, ctx):
    """Write sample videos (GIF + MP4), foregrounds, masks and backgrounds (PNG) from a checkpoint."""
    from . import checkpoint as ckpt
    from .runtime.context import single_context
    _setup_logging()
    device = single_context(ctx)
    opened = ckpt.open_checkpoint(checkpoint)     # a damaged checkpoint is named before anything else is read
    normalize = None if normalize == "none" else normalize
    if conditional or images:
        from .conditional import sample_conditional
        out_dir = out_dir or os.path.join(checkpoint, "future")
        summary = sample_conditional(opened, images, out_dir, fps=fps, scale=scale, normalize=normalize,
                                     ctx=device)
    else:
        from .data.sources import readable_training_clips
        from .generation.sampling import sample as run_sample
        out_dir = out_dir or os.path.join(checkpoint, f"samples-seed{seed}")
        reference, problem = readable_training_clips(opened.config) if n >= 4 else (None, None)
        if problem:
            click.echo(f"no statistics against the training clips: {problem}", err=True)
        summary = run_sample(opened, out_dir, n=n, seed=seed, interpolate=interpolate, steps=steps,
                             fps=fps, scale=scale, normalize=normalize, ctx=device, reference=reference)
    click.echo(f"wrote {summary['files']} files to {out_dir} "
               f"(mean mask {summary['mask_mean']:.3f}, "
               f"mask > 0.5 on {100 * summary['mask_fraction_above_half']:.1f}% of pixels)")
    if summary.get("statistics"):
        from .metrics.clip_statistics import format_rows
        click.echo(f"weight-free statistics of these {n} clips against the training clips "
                   f"(tinyvideo-mx evaluate --stats for more clips):")
        for line in format_rows(summary["statistics"]):
            click.echo("  " + line)


@main.command()
@click.argument("checkpoint", type=click.Path(exists=True))
@click.option("--out", "prefix", type=click.Path(), default=None, callback=output_prefix,
              help="Output prefix (default: <run>/export/generator) -> PREFIX-symbol.json, PREFIX-0000.params.")
@click.option("--onnx", "onnx_batch", type=POSITIVE, default=None, metavar="BATCH",
              help="Also write PREFIX.onnx with this fixed batch size (needs the 'serve' extra).")
@click.option("--mar", is_flag=True, help="Also build PREFIX-dir/vgan.mar for multi-model-server (needs the 'serve' extra).")
def export(checkpoint, prefix, onnx_batch, mar):
    """Export the generator as symbol JSON + params for MXNet serving (outputs: video, foreground, mask, background)."""
    from .generation.export import export_generator, export_mar, export_onnx
    prefix = prefix or os.path.join(checkpoint, "export", "generator")
    for path in export_generator(checkpoint, prefix):
        click.echo(path)
    if onnx_batch:
        click.echo(export_onnx(prefix, prefix + ".onnx", onnx_batch))
    if mar:
        click.echo(export_mar(prefix, os.path.dirname(os.path.abspath(prefix))))


@main.command()
@click.argument("checkpoint", type=click.Path(exists=True))
@click.option("--data", "data_list", type=click.Path(), default=None,
              help="List file of the real strips FVD compares with (default: the run's training data).")
@click.option("--i3d-weights", type=click.Path(), default=None,
              help="MXNet .params of GluonCV's i3d_inceptionv1_kinetics400 (or converted DeepMind I3D): computes FVD.")
@click.option("--i3d-input", type=click.Choice(["imagenet", "symmetric"]), default="imagenet", show_default=True,
              help="What the I3D weights expect: imagenet (GluonCV's weights), symmetric ([-1,1]: DeepMind's I3D).")
@click.option("--c3d-weights", type=click.Path(), default=None,
              help="MXNet .params of GluonCV's c3d definition (e.g. a UCF-101 classifier): computes the Inception Score.")
@click.option("--c3d-classes", type=click.IntRange(min=2), default=101, show_default=True, help="Classes of the C3D weights.")
@click.option("--c3d-input", type=click.Choice(["imagenet", "symmetric", "caffe"]), default="imagenet", show_default=True)
@click.option("-n", "--num", "n", type=click.IntRange(min=2), default=2048, show_default=True, help="Generated (and real) clips.")
@click.option("--splits", type=POSITIVE, default=10, show_default=True, help="Inception Score splits.")
@click.option("--seed", type=NON_NEGATIVE, default=0, show_default=True)
@click.option("--real-stats", type=click.Path(), default=None, help="Cache of the real clips' I3D statistics (.npz).")
@click.option("--out", type=click.Path(), default=None, help="Result JSON (default: <checkpoint>/metrics-seed<N>.json).")
@click.option("--stats", is_flag=True,
              help="Weight-free statistics (checkerboard, flicker, motion, colour moments, a pixel Frechet "
              "distance, mask) of generated vs real clips, as ratios; needs no weights.")
@click.option("--stats-clips", type=click.IntRange(min=4), default=256, show_default=True,
              help="Generated (and real) clips for --stats.")
def evaluate(checkpoint, data_list, i3d_weights, i3d_input, c3d_weights, c3d_classes, c3d_input, n, splits, seed,
             real_stats, out, stats, stats_clips):
    """FVD against real strips (I3D) and Inception Score (C3D) of a checkpoint's generator.

    Weights are read from files, never downloaded; see the README (Evaluation) for which weights give
    numbers comparable with the literature and for the protocol."""
    from . import checkpoint as ckpt
    from .metrics import video_networks
    from .metrics.evaluation import evaluate as run_evaluation
    _setup_logging()
    opened = ckpt.open_checkpoint(checkpoint)     # a damaged checkpoint is named before any network is built
    i3d = video_networks.i3d(i3d_weights, normalisation=i3d_input) if i3d_weights else None
    c3d = video_networks.c3d(c3d_weights, classes=c3d_classes, normalisation=c3d_input) if c3d_weights else None
    out = out or os.path.join(checkpoint, f"metrics-seed{seed}.json")
    result = run_evaluation(opened, data_list, i3d, c3d, n=n, seed=seed, splits=splits, out=out,
                            real_cache=real_stats, stats_clips=stats_clips if stats else 0)
    if "statistics" in result:
        from .metrics.clip_statistics import format_rows
        rows = result["statistics"]["rows"]
        click.echo(f"weight-free statistics, {stats_clips} generated vs {stats_clips} real clips:")
        for line in format_rows(rows):
            click.echo("  " + line)
    if "fvd" in result:
        click.echo(f"FVD {result['fvd']['value']:.2f} ({result['fvd']['generated_clips']} generated vs "
                   f"{result['fvd']['real_clips']} real clips)")
    if "inception_score" in result:
        r = result["inception_score"]
        click.echo(f"IS {r['mean']:.3f} +- {r['std']:.3f} ({r['clips']} clips, {r['splits']} splits)")
    click.echo(f"wrote {out}")


@main.command("finetune-classifier")
@click.argument("checkpoint", type=click.Path(exists=True), required=False)
@click.option("--train-list", type=click.Path(), required=True, help="Labelled list: 'path class' per line, classes 1..K.")
@click.option("--test-list", type=click.Path(), default=None, help="Held-out labelled list: accuracy is reported on it.")
@click.option("--out", "out_dir", type=click.Path(), required=True, help="Folder for classifier.params, result.json, logs.")
@click.option("--classes", type=click.IntRange(min=2), default=None, help="Number of classes (default: the largest label).")
@click.option("--iterations", type=POSITIVE, default=1000, show_default=True)
@click.option("--batch-size", type=POSITIVE, default=32, show_default=True, help="The original used 256 (on a GPU).")
@click.option("--lr", type=POSITIVE_FLOAT, default=2e-4, show_default=True)
@click.option("--from-scratch", is_flag=True, help="Random initialisation instead of D's weights (the original's baseline).")
@click.option("--frame-height", type=POSITIVE, default=None,
              help="Rows per frame in the strips (default: the checkpoint's, else 128; the original's UCF strips: 256).")
@click.option("--data-root", type=click.Path(), default=None)
@click.option("--ctx", default="cpu", show_default=True)
@click.option("--seed", type=NON_NEGATIVE, default=0, show_default=True)
@click.option("--quiet", is_flag=True)
def finetune_classifier(checkpoint, train_list, test_list, out_dir, classes, iterations, batch_size, lr, from_scratch,
                        frame_height, data_root, ctx, seed, quiet):
    """Action recognition from the discriminator (main_ucf.lua): D without its last layer, channel dropout
    and a K-class head, fine-tuned on a labelled list. CHECKPOINT: a run or checkpoint holding D."""
    from .classifier import finetune
    _setup_logging()
    if not checkpoint and not from_scratch:
        raise click.UsageError("give a CHECKPOINT whose discriminator to fine-tune, or --from-scratch")
    result = finetune(train_list, out_dir, checkpoint, test_list, classes, iterations, batch_size, lr,
                      from_scratch=from_scratch, seed=seed, frame_height=frame_height, ctx=ctx, data_root=data_root,
                      progress=not quiet)
    line = f"{result['classes']} classes, {iterations} iterations: train accuracy {result['train_accuracy']:.3f}"
    if test_list:
        line += f", test accuracy {result['test_accuracy']:.3f} (chance {result['chance']:.3f})"
    click.echo(line)
    click.echo(f"wrote {os.path.join(out_dir, 'result.json')}")


@main.command("convert-c3d")
@click.argument("npz", type=click.Path())
@click.option("--out", type=click.Path(), required=True, help="GluonCV C3D .params to write (for evaluate --c3d-weights).")
def convert_c3d(npz, out):
    """Convert a Chainer C3D (.npz: conv1a..conv5b, fc6..fc8; e.g. TGAN's UCF-101 classifier) to GluonCV's C3D."""
    from .metrics.convert import chainer_c3d
    classes = chainer_c3d(npz, out)
    click.echo(f"wrote {out} ({classes} classes): use evaluate --c3d-weights {out} --c3d-classes {classes}")


@main.command("import-t7")
@click.argument("generator", type=click.Path())
@click.option("--discriminator", type=click.Path(), default=None,
              help="The matching *_netD.t7 (default: the file beside GENERATOR, if there is one).")
@click.option("--out", "run_dir", type=click.Path(), required=True, help="Run folder to write the checkpoint into.")
def import_t7(generator, discriminator, run_dir):
    """Convert the original's released Torch7 checkpoint (e.g. models/golf/iter65000_net.t7) to a checkpoint
    that sample, export, evaluate, finetune-classifier and train --resume accept."""
    from .generation.torch_import import import_t7 as convert
    _setup_logging()
    path = convert(generator, run_dir, discriminator)
    has_d = os.path.exists(os.path.join(path, "D.params"))
    click.echo(f"imported generator{' and discriminator' if has_d else ''} -> {path}")


@main.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="HTML file (default: <run>/report.html).")
def report(run_dir, out):
    """One self-contained HTML page about a run: loss and statistics curves, the sample grids over time
    (GIFs), the configuration. Open it in a browser."""
    from .metrics.report import write_report
    click.echo(write_report(run_dir, out))


@main.command()
def doctor():
    """What this machine can run: Python, the MXNet install and its build, CPU features (--amp), threads,
    and each GPU with its compute capability and whether MXNet 1.9.1 can use it."""
    from .runtime.doctor import report
    lines, healthy = report()
    for line in lines:
        click.echo(line)
    if not healthy:
        raise click.ClickException("the MXNet install needs fixing (see PROBLEM above)")


@main.command()
@click.argument("prefix")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("--max-n", type=POSITIVE, default=16, show_default=True, help="Most clips one request may ask for.")
@click.option("--ctx", default="cpu", show_default=True, callback=gpu_contexts_usable, help="Device: cpu or gpuN.")
@click.option("--threads", type=POSITIVE, default=4, show_default=True,
              help="Request threads (parsing, image decoding, encoding); inference has one thread of its own.")
@click.option("--connections", type=POSITIVE, default=1000, show_default=True,
              help="Open connections at most (a stalled one costs a file descriptor, not a thread); "
                   "past it, new connections get an immediate 503.")
@click.option("--timeout", type=POSITIVE, default=30, show_default=True,
              help="Seconds a connection may stall (408 inside a request; idle ones are closed).")
@click.option("--receive-timeout", type=POSITIVE, default=30, show_default=True,
              help="Seconds to receive a whole request, headers and body, however slowly it trickles in (else 408).")
@click.option("--generate-timeout", type=POSITIVE, default=120, show_default=True,
              help="Seconds a request may wait for its generation (else 503).")
def serve(prefix, host, port, max_n, ctx, threads, connections, timeout, receive_timeout, generate_timeout):
    """Serve an exported generator over HTTP: GET / (a page to try it), POST /predictions, GET /ping."""
    from .runtime.context import single_context
    from .serving.http import make_server
    _setup_logging()
    server = make_server(prefix, host, port, max_n, ctx=single_context(ctx), threads=threads,
                         connections=connections, timeout=timeout, receive_timeout=receive_timeout,
                         generate_timeout=generate_timeout)
    click.echo(f"serving {prefix} on http://{host}:{server.server_address[1]}/ (open it in a browser; "
               f"POST /predictions, GET /ping)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()


@main.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("--out", "out_dir", type=click.Path(), required=True, help="Output folder: strips, list.txt, report.json.")
@click.option("--faithful", is_flag=True,
              help="The original algorithm exactly: full-resolution SIFT, exact FLANN matching, no gate, no cut detection.")
@click.option("--motion", type=click.Choice(["flow", "features"]), default=None,
              help="How frame-to-frame motion is found: flow (corners followed by optical flow, feature "
                   "matching where it fails; the default) or features (matching only, as the original).")
@click.option("--features", type=click.Choice(["sift", "orb"]), default=None, help="Feature detector (sift).")
@click.option("--work-size", type=NON_NEGATIVE, default=None,
              help="Short side that corners are found and followed at (400; 0 = full resolution). "
                   "Frames are always warped at full resolution, as the original did.")
@click.option("--fps", type=POSITIVE_FLOAT, default=None, help="Resample videos to this frame rate (default: native).")
@click.option("--min-frames", type=POSITIVE, default=None, help="Drop clips shorter than this (16).")
@click.option("--max-frames", type=POSITIVE, default=None, help="Frames per clip at most (34).")
@click.option("--max-clips", type=POSITIVE, default=None, help="Clips per video at most (100).")
@click.option("--min-matches", type=click.IntRange(min=4), default=None, help="Ratio-test matches needed per frame (10).")
@click.option("--no-scene-cuts", is_flag=True, help="Do not split clips at detected cuts.")
@click.option("--no-quality-gate", is_flag=True, help="Accept every homography RANSAC returns.")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="Any other constant of stabilize.StabilizeConfig, e.g. --set ratio=0.8 --set ransac_threshold=3.")
@click.option("--processes", "--workers", "processes", type=POSITIVE, default=1, show_default=True,
              help="Videos processed in parallel, one process each (--workers is its old name).")
@click.option("--quiet", is_flag=True)
def stabilize(inputs, out_dir, faithful, motion, features, work_size, fps, min_frames, max_frames, max_clips, min_matches,
              no_scene_cuts, no_quality_gate, settings, processes, quiet):
    """Turn video files (or folders, or .txt lists of them) into stabilised 128-px JPEG strips + list.txt.

    Exit status 0 when every video was handled; 1 when a video could not be read or was skipped because
    another live worker holds it (each named above; the clips of the others are written and listed), or
    when no clip at all was written. A rerun does only what is left."""
    from stabilize import StabilizeConfig, stabilize_many
    from stabilize.runner import failure, summary
    _setup_logging()
    config = StabilizeConfig.from_options(
        faithful, settings, scene_cuts=not no_scene_cuts, quality_gate=not no_quality_gate, motion=motion,
        features=features, flow_size=work_size, fps=fps, min_frames=min_frames, max_frames=max_frames,
        max_clips=max_clips, min_matches=min_matches)
    report = stabilize_many(list(inputs), out_dir, config, processes=processes, progress=not quiet)
    click.echo(summary(report, out_dir))
    problem = failure(report, out_dir)
    if problem:
        raise click.ClickException(problem)


if __name__ == "__main__":
    main()
