"""`runegen train`: the training side (TensorFlow, imported lazily)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from runegen.commands.options import (MAX_SCORED, MAX_SEED, check_writable, finite, flag, given_path, is_default,
                                     note_reference_size, option_value, positive, require)
from runegen.commands.loading import load_while_tensorflow_starts
from runegen.commands.resume import resumed_config
from runegen.commands.run_folder import check_outside_data, check_run_folder_name, fresh_run_folder, run_folder_lock
from runegen.core.errors import DataError, DeviceError, ReplicaSettingError, RunStateError, UsageError
from runegen.training.config import (OBJECTIVES, PRECISIONS, PRESET_NAMES, UPDATES, TrainConfig,
                                     check_precision_runs_here)
from runegen.training.distribute import check_replica_settings, cluster, describe, is_chief, listed_devices

DEFAULT = TrainConfig()  # the options' defaults are the config's: one place to change them

# Sizes past any memory: --latent-dim 5000000 was TensorFlow's OOM traceback (G's first layer has
# 12,544 weights per latent input), --samples-per-class 10^12 numpy's ("Unable to allocate 66.8 PiB").
MAX_LATENT_DIM = 4096  # G's first layer 205 MB in fp32, Adam's and the EMA's copies beside it
MAX_SAMPLES_PER_CLASS = 50_000  # 1.2 million runes, 3.8 GB as float32


def _choices(name: str, values) -> type[Enum]:
    """A typer choice option's type, made from the config's own list of values."""
    return Enum(name, {value: value for value in values}, type=str)


PresetName = _choices("PresetName", PRESET_NAMES)
Update = _choices("Update", UPDATES)
Objective = _choices("Objective", OBJECTIVES)
Precision = _choices("Precision", ("auto", *PRECISIONS))


def train(
    ctx: typer.Context,
    data: str = typer.Option(DEFAULT.data, parser=given_path("--data", str), help="'runes' (built-in), 'mnist' (local files) or a path: "
                             "mnist.npz, a folder of idx files, or an image folder."),
    preset: PresetName = typer.Option(PresetName(DEFAULT.preset), help="Network pair: s1 (tutorial / seed 000) or s2 (seed 001)."),
    epochs: int = typer.Option(DEFAULT.epochs, callback=positive("--epochs"), help="Epochs in all (with --resume: the new total)."),
    batch_size: int = typer.Option(DEFAULT.batch_size, callback=positive("--batch-size"), help="The global batch: all replicas of --devices together. With --mode-seeking, a multiple of 2 x the replicas (it pairs latents in each)."),
    objective: Objective = typer.Option(Objective(DEFAULT.objective), help="hinge (with spectral norm) or bce (the tutorial's cross-entropy)."),
    spectral_norm: bool = typer.Option(DEFAULT.spectral_norm, "--spectral-norm/--no-spectral-norm", help="Spectrally normalised convolutions and logit layer in D (no dropout; the Q head and projection embeddings stay plain); off: the preset's own D (s1: Dropout 0.3; s2: BatchNorm, no dropout)."),
    minibatch_std: bool = typer.Option(DEFAULT.minibatch_std, "--minibatch-std/--no-minibatch-std", help="Minibatch standard deviation channel in D (rewards varied batches)."),
    d_width: float = typer.Option(DEFAULT.d_width, min=0.05, max=4.0, help="D's channels, times the preset's: a narrower D makes each step cheaper (D's passes are about 40% of an fp32 step on a 2-core Intel Xeon held to AVX2 kernels); G stays the seed's network."),
    d_kernel: int = typer.Option(DEFAULT.d_kernel, min=0, max=7, help="Size of D's square convolution kernels; 0 = the preset's (s1: 5, s2: 3). G stays the seed's network."),
    codes: int = typer.Option(DEFAULT.codes, min=0, help="InfoGAN latent codes: the last N of the latent's inputs are a one-hot code that D's Q head must read back (no labels used); 0 = plain Gaussian latent (1, a constant, is refused). Ignored with --conditional."),
    continuous_codes: int = typer.Option(DEFAULT.continuous_codes, min=0, help="Gaussian latent inputs (just before the one-hot code) that Q must also read back, so G spends them on visible variation; 0 = none. Ignored with --conditional."),
    info_weight: float = typer.Option(DEFAULT.info_weight, min=0.0, callback=finite("--info-weight"), help="Weight of Q's loss (the code's cross-entropy, the continuous codes' half squared error) in both losses."),
    continuous_weight: float = typer.Option(DEFAULT.continuous_weight, min=0.0, callback=finite("--continuous-weight"), help="Weight of the continuous codes' regression, relative to the one-hot code's cross-entropy (both times --info-weight)."),
    self_conditioning: bool = typer.Option(DEFAULT.self_conditioning, "--self-conditioning/--no-self-conditioning", help="With --codes: D judges fakes against their code and real images against the code its Q head reads in them (a projection term), so each code must match its cluster of real glyphs as a whole."),
    code_balance: float = typer.Option(DEFAULT.code_balance, min=0.0, callback=finite("--code-balance"), help="With --codes: weight of D's term that spreads its Q head's readings of real images evenly over the codes, so that every kind of glyph gets its share of codes; 0 = off."),
    code_invariance: float = typer.Option(DEFAULT.code_invariance, min=0.0, callback=finite("--code-invariance"), help="With --codes: weight of D's term that keeps its Q head's reading of a real glyph when the glyph is shifted by up to 2 pixels, so codes gather glyphs by shape, not by position (one more pass of D per step); 0 = off."),
    code_prior: bool = typer.Option(DEFAULT.code_prior, "--code-prior/--no-code-prior", help="With --codes: draw each code as often as D's Q head reads it in real glyphs (learned while training, saved with the generator) instead of uniformly."),
    mode_seeking: float = typer.Option(DEFAULT.mode_seeking, min=0.0, callback=finite("--mode-seeking"), help="Weight of the bounded mode-seeking term (after MSGAN) in G's loss: pairs of latents with the same code must draw different images; 0 = off."),
    mode_seeking_target: float = typer.Option(DEFAULT.mode_seeking_target, min=0.001, callback=finite("--mode-seeking-target"), help="The image distance per unit of noise distance (mean absolute differences) --mode-seeking asks of same-code pairs; pushes no further. Real runes of one class: 0.16."),
    lr_g: float = typer.Option(DEFAULT.lr_g, callback=positive("--lr-g"), help="Generator Adam learning rate."),
    lr_d: float = typer.Option(DEFAULT.lr_d, callback=positive("--lr-d"), help="Discriminator Adam learning rate."),
    lr_decay: float = typer.Option(DEFAULT.lr_decay, min=0.0, max=1.0, help="Share of the run, at its end, over which both learning rates fall linearly to 0 (0: constant rates)."),
    beta_1: float = typer.Option(DEFAULT.beta_1, min=0.0, max=0.999, help="Adam beta_1 for both networks."),
    beta_2: float = typer.Option(DEFAULT.beta_2, min=0.0, max=0.9999, help="Adam beta_2 for both networks."),
    seed: int = typer.Option(DEFAULT.seed, min=0, max=MAX_SEED, help="Seed for data, weights, noise and shuffling."),
    latent_dim: int = typer.Option(DEFAULT.latent_dim, max=MAX_LATENT_DIM, callback=positive("--latent-dim"), help="Width of G's latent input (the seeds' 100). The codes are part of it: it must exceed --codes + --continuous-codes (unless --conditional, which adds the classes beside it)."),
    update: Update = typer.Option(Update(DEFAULT.update), help="simultaneous (tutorial, cheaper) or alternating (seed 001)."),
    precision: Precision = typer.Option(Precision(DEFAULT.precision), help="fp32, bf16 (mixed bfloat16), fp16 (mixed float16, loss scaling), or auto: bf16 on GPUs with compute capability >= 8.0 and CPUs with AVX512-BF16/AMX, fp16 on 7.x GPUs, else fp32."),
    deterministic: Optional[bool] = typer.Option(DEFAULT.deterministic, "--deterministic/--no-deterministic", help="TensorFlow op determinism (same seed -> same weights).", show_default="on without a GPU; ~1% of the step on a 2-core AMD EPYC with AVX512-BF16"),
    jit: bool = typer.Option(DEFAULT.jit, "--jit/--no-jit", help="Compile the step with XLA (0.90x on a 2-core AMD EPYC with AVX512-BF16)."),
    checkpoint_every: int = typer.Option(DEFAULT.checkpoint_every, callback=positive("--checkpoint-every"), help="Checkpoint every N epochs (and at the end)."),
    samples_per_class: int = typer.Option(DEFAULT.samples_per_class, max=MAX_SAMPLES_PER_CLASS, callback=positive("--samples-per-class"), help="Built-in runes: images drawn per rune."),
    conditional: bool = typer.Option(DEFAULT.conditional, "--conditional", help="Class-conditional: generate asks for a rune/class."),
    ema: float = typer.Option(DEFAULT.ema, min=0.0, max=0.99999, help="Decay of the generator's weight average (EMA), sampled and saved; 0 = off."),
    diffaugment: bool = typer.Option(DEFAULT.diffaugment, "--diffaugment/--no-diffaugment", help="DiffAugment (translation, cutout) on D's inputs; Q then reads the codes through it, which collapsed runs with them (use with --codes 0 --continuous-codes 0)."),
    label_smoothing: float = typer.Option(DEFAULT.label_smoothing, min=0.0, max=0.5, help="One-sided: D's target for real images is 1 - this (bce objective only; ignored with hinge)."),
    r1: float = typer.Option(DEFAULT.r1, min=0.0, callback=finite("--r1"), help="Weight (gamma) of the R1 penalty: D pays gamma/2 times the squared gradient of its logit at real images, so G is not pushed onto a few sharp peaks of D; 0 = off."),
    r1_every: int = typer.Option(DEFAULT.r1_every, callback=positive("--r1-every"), help="With --r1: apply the penalty every N steps, N times as strong (lazy regularisation, as StyleGAN2; its second-order pass of D is paid on those steps only)."),
    eval_every: int = typer.Option(DEFAULT.eval_every, min=0, help="Quality metrics (FD, KID, precision, recall, density, coverage, recognisability) every N epochs and at the end; 0 = never."),
    eval_samples: int = typer.Option(DEFAULT.eval_samples, min=10, max=MAX_SCORED, help="Generated (and real) images per evaluation."),
    devices: str = typer.Option(DEFAULT.devices, help="tf.distribute: auto = every GPU (MirroredStrategy) or the TF_CONFIG cluster (MultiWorkerMirroredStrategy), else one device; or a list such as /gpu:0,/gpu:1."),
    out: Optional[Path] = typer.Option(None, parser=given_path("--out"), help="Run folder.", show_default="runs/train, runs/train2, ..."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out (default: the latest run) from its last checkpoint."),
):
    """Train a DCGAN; with no arguments, s1 on the built-in runes."""
    # One config object: every TrainConfig field is an option of this command, of the same name.
    given = TrainConfig(**{f.name: option_value(ctx.params[f.name]) for f in dataclasses.fields(TrainConfig)})
    if out is not None:
        check_run_folder_name(out)
    if resume:
        config, out = resumed_config(ctx, given, out)
    elif is_chief():
        config = given
        out = fresh_run_folder(out)
    else:  # another worker of a cluster: the chief owns the folder (it may be the same, shared)
        config = given
        out = out or Path("runs") / "train"
    _check_codes_and_pairs(config)  # the settings it will train, a resumed run's own included
    check_outside_data(config.data, out)

    # listed devices are known before TensorFlow starts; a cluster's replicas are counted by its
    # strategy, and Run refuses these there
    listed = len(listed_devices(config.devices))  # 0 for auto: counted by the strategy, in Run
    if listed:  # (with auto counted as 0 replicas, --mode-seeking divided by zero)
        with _replica_settings_flag(config):
            check_replica_settings(config, listed)
    require("tensorflow", "training needs TensorFlow: pip install 'runegen[train]'")
    with flag("--data", DataError):
        dataset = load_while_tensorflow_starts(config)
    if config.conditional and len(dataset.class_names) < 2:
        raise UsageError(f"--conditional: --data {config.data} has one class (no labels); "
                         "a conditional model needs a subfolder per class")
    scorer = _checked_scorer(config, dataset) if config.eval_every and not dataset.built_in else None
    if config.eval_every:
        note_reference_size("--eval-samples", config.eval_samples, dataset)
    if len(dataset) < config.batch_size:
        raise UsageError(f"--batch-size {config.batch_size} is larger than the dataset ({len(dataset)} images)")
    # where a resumed run's total of epochs came from, for a refusal that names it (a hand-edited
    # config.json's was named "--epochs 1" as if given)
    epochs_from = None
    if resume:
        epochs_from = "--epochs" if not is_default(ctx, "epochs") else f"{out / 'config.json'}: epochs"
    _train(config, out, dataset, epochs_from, scorer)


def _check_codes_and_pairs(config: TrainConfig) -> None:
    if config.latent_codes + config.latent_continuous_codes >= config.latent_dim:
        raise UsageError(f"--codes {config.codes} + --continuous-codes {config.continuous_codes}: must be smaller "
                         f"than --latent-dim {config.latent_dim} (the codes are part of it)")
    if config.latent_codes == 1:  # its one-hot is a constant: nothing for Q to read back
        raise UsageError("--codes 1: one code is a constant, nothing to learn; give 0 (none) or 2 or more")
    if config.mode_seeking and config.batch_size % 2:
        raise UsageError(f"--mode-seeking pairs latents: --batch-size {config.batch_size} must be even")


def _checked_scorer(config, dataset):
    """Data the metrics cannot score is refused now rather than at the first evaluation: too few
    images, or (one class: the rune classifier's features) glyphs that classifier sees nothing in.
    Returns the Scorer of data of one class, cheap to build (no classifier to train), for the run."""
    from runegen.quality.scorer import MIN_REFERENCE, Scorer

    try:
        if len(dataset.class_names) < 2:
            return Scorer.for_dataset(dataset, config.eval_samples)
        if len(dataset) < MIN_REFERENCE:
            raise DataError(f"{dataset.asked}: {len(dataset)} images, too few to score (at least {MIN_REFERENCE})")
    except DataError as error:
        raise UsageError(f"--data {error}; train with --eval-every 0") from None
    return None


def _train(config, out: Path, dataset, epochs_from: str | None, scorer=None) -> None:
    """epochs_from: for a resumed run, where its epochs came from (--epochs or its config.json); None: a new run."""
    with contextlib.ExitStack() as held:  # the run folder's lock, taken once the folder is made
        _train_holding(held, config, out, dataset, epochs_from, scorer)


def _train_holding(held, config, out: Path, dataset, epochs_from: str | None, scorer=None) -> None:
    resume = epochs_from is not None
    from rich.console import Console
    from rich.markup import escape

    from runegen.training.distribute import make_strategy
    from runegen.training.run import Run

    # First TensorFlow work: a cluster's collectives must be set up before anything else.
    if config.devices == "auto" and cluster():  # the strategy waits, silently, for every worker
        typer.echo("joining TF_CONFIG's cluster of workers: waiting until every one has started (Ctrl-C stops)",
                   err=True)
    with flag("--devices", DeviceError):
        strategy = make_strategy(config.devices)
    check_precision_runs_here(config.precision, listed_devices(config.devices))  # a GPU runs bf16 regardless
    chief = is_chief()
    if chief:  # after the devices' check, so that a refused run leaves no folder behind
        check_writable(out)
        held.enter_context(run_folder_lock(out))
    console = Console(stderr=True, quiet=not chief)  # one progress display and log: the chief's

    def say(line: str, markup: bool = False) -> None:
        """One log line, unwrapped (a command in it stays copyable) and without markup: paths
        like exp[red] are printed as they are."""
        console.print(line, markup=markup, highlight=False, soft_wrap=True)
    # a setting the strategy's replicas cannot run; else a run folder's lost note of its checkpoints
    # that cannot be mended (named "--mode-seeking/--batch-size" until 2026-12-05)
    with flag("--resume:", RunStateError), _replica_settings_flag(config):
        run = Run(config, out, dataset, strategy, scorer)
    config = run.config  # precision and determinism resolved, once, by the run
    restored = _restored(run, config, out, epochs_from) if resume else None
    # (_restored refused a checkpoint past --epochs)
    if restored and restored[0] == config.epochs and _saved_from(run, out / "generator.keras"):
        say(f"{out} has trained its {_epochs(config.epochs)}: nothing to do "
            f"(--resume --epochs N, N > {config.epochs}, trains on)")  # finished: left as it is
        return
    say(f"[bold]runegen train[/] {config.preset} ({config.precision}, {describe(run.strategy)}) "
        f"on {escape(dataset.asked)} ({len(dataset):,} images, {_classes(len(dataset.class_names))}) -> {escape(str(out))}",
        markup=True)
    if restored and restored[0] == config.epochs:  # its generator.keras is not its last checkpoint's
        say(f"finishing the run from its last checkpoint (epoch {restored[0]}): "
            "its generator.keras was not written from it")
    elif restored:
        say(f"resumed at epoch {restored[0] + 1}, step {restored[1]}")
    elif chief and resume:  # stopped before its first checkpoint: nothing to restore
        say(f"no checkpoint in {out / 'checkpoints'} yet: training from the beginning")
        for stale in [*(out / "samples").glob("epoch_*.png"), out / "metrics.csv"]:
            stale.unlink(missing_ok=True)
    if chief:
        _write_run_record(out, config, dataset)
    _train_with_progress(run, out, console, say)


def _saved_from(run, generator_file: Path) -> bool:
    """Whether `generator_file` holds the restored run's weights: a run resumed for more epochs and
    stopped as it ended (or killed while saving) keeps the shorter run's file, which was read as
    "nothing to do" for good."""
    import keras
    import numpy as np

    try:
        saved = keras.saving.load_model(generator_file, compile=False).get_weights()
    except Exception:  # noqa: BLE001 - missing or unreadable: written again by finishing the run
        return False
    restored = run.gan.sampler.get_weights()
    return len(saved) == len(restored) and all(np.array_equal(a, b) for a, b in zip(saved, restored))


def _restored(run, config, out: Path, epochs_from: str) -> tuple[int, int] | None:
    """(epochs done, steps into the next) of the run's last checkpoint, restored; None where it has
    none yet. A run that has trained past the asked --epochs is refused."""
    with flag("--resume:", RunStateError):
        if not run.restore():
            return None
    done, step = int(run.epoch.numpy()), int(run.step_in_epoch.numpy())
    if done > config.epochs or (done == config.epochs and step):
        raise UsageError(f"{epochs_from} {config.epochs}: the run in {out} has trained {done} epochs"
                         f"{f' and {step} steps' if step else ''} already (--epochs N, N > {done}, trains on)")
    return done, step


def _write_run_record(out: Path, config, dataset) -> None:
    """What a later --resume reads back (the settings this one changed: --epochs, ...), and what a
    resumed run's folder may have lost since: samples/ (a FileNotFoundError at the epoch's end),
    classes.json (generator.keras's class names), the data record (a run begun before there was
    one: its data has just been checked)."""
    from runegen.core import atomic
    from runegen.training.config import save_config
    from runegen.training.resume import save_data_record

    (out / "samples").mkdir(parents=True, exist_ok=True)
    save_config(config, out)
    atomic.write_text(out / "classes.json", json.dumps(list(dataset.class_names)) + "\n")
    save_data_record(out, dataset)


def _train_with_progress(run, out: Path, console, say) -> None:
    """The epochs, with a progress bar on a terminal (it keeps each finished epoch's bar) or one
    plain line per epoch in a log (rich would print every bar again when the display stops, cut
    to 80 columns); then the saved generator."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from runegen.training.run import TrainingDiverged

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn(), TextColumn("{task.fields[stats]}"))
    started = time.perf_counter()
    try:
        with Progress(*columns, console=console, disable=not console.is_terminal) as progress:
            run.train(progress, log=lambda line: console.is_terminal or say(line))
    except TrainingDiverged as error:
        say(f"runegen: error: {error}; lower learning rates (--lr-g, --lr-d) may keep a new run from it")
        raise typer.Exit(1)
    except KeyboardInterrupt as error:  # TrainingStopped (a checkpoint saved), or a second signal
        say(f"{str(error) or 'interrupted'}; continue with: runegen train --resume --out {out}")
        raise typer.Exit(getattr(error, "exit_code", 130))
    generator = run.finish()
    if generator is not None:
        say(f"done in {time.perf_counter() - started:.0f} s: {generator}, samples in {out / 'samples'}, "
            f"{out / 'progress.gif'}")


def _replica_settings_flag(config):
    """The flags a ReplicaSettingError names (distribute.check_replica_settings checks in this order)."""
    if config.diffaugment:
        return flag("--diffaugment/--devices:", ReplicaSettingError)
    if config.mode_seeking:
        return flag("--mode-seeking/--batch-size:", ReplicaSettingError)
    return flag("--batch-size/--devices:", ReplicaSettingError)


def _epochs(count: int) -> str:
    return f"{count} epoch{'s' if count != 1 else ''}"


def _classes(count: int) -> str:
    return f"{count} classes" if count > 1 else "one class: no labels"
