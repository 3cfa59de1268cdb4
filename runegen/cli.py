"""The `runegen` command line: a thin typer layer over the pipeline modules.

Heavy libraries (TensorFlow above all) are imported inside the commands that need them, so the
edge commands start fast and work on a base install without TensorFlow.
Bad input is one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import tempfile
import time
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from typer.exceptions import TyperException  # typer >= 0.29 vendors click: its errors derive from this

from runegen.errors import UsageError

app = typer.Typer(help="Train a small DCGAN to draw 28x28 runes and ship the generator to the edge.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
data_app = typer.Typer(help="Look at the training data.", no_args_is_help=True)
app.add_typer(data_app, name="data")


class PresetName(str, Enum):
    s1 = "s1"
    s2 = "s2"


class Update(str, Enum):
    simultaneous = "simultaneous"
    alternating = "alternating"


class Precision(str, Enum):
    auto = "auto"
    fp32 = "fp32"
    bf16 = "bf16"


def _positive(name: str):
    def check(value):
        if value is not None and value <= 0:
            raise typer.BadParameter(f"must be > 0, got {value}", param_hint=name)
        return value
    return check


def _is_default(ctx: typer.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is None or source.name == "DEFAULT"


@app.command()
def train(
    ctx: typer.Context,
    data: str = typer.Option("runes", help="'runes' (built-in), 'mnist' (local files) or a path: "
                             "mnist.npz, a folder of idx files, or an image folder."),
    preset: PresetName = typer.Option(PresetName.s1, help="Network pair: s1 (tutorial / seed 000) or s2 (seed 001)."),
    epochs: int = typer.Option(30, callback=_positive("--epochs"), help="Epochs in all (with --resume: the new total)."),
    batch_size: int = typer.Option(64, callback=_positive("--batch-size")),
    lr_g: float = typer.Option(2e-4, callback=_positive("--lr-g"), help="Generator Adam learning rate."),
    lr_d: float = typer.Option(2e-4, callback=_positive("--lr-d"), help="Discriminator Adam learning rate."),
    beta_1: float = typer.Option(0.5, min=0.0, max=0.999, help="Adam beta_1 for both networks."),
    seed: int = typer.Option(0, min=0, help="Seed for data, weights, noise and shuffling."),
    latent_dim: int = typer.Option(100, callback=_positive("--latent-dim")),
    update: Update = typer.Option(Update.simultaneous, help="simultaneous (tutorial, cheaper) or alternating (seed 001)."),
    precision: Precision = typer.Option(Precision.auto, help="fp32, bf16 (mixed bfloat16), or auto: bf16 on CPUs with AVX512-BF16/AMX, else fp32."),
    checkpoint_every: int = typer.Option(5, callback=_positive("--checkpoint-every"), help="Checkpoint every N epochs (and at the end)."),
    samples_per_class: int = typer.Option(400, callback=_positive("--samples-per-class"), help="Built-in runes: images drawn per rune."),
    out: Optional[Path] = typer.Option(None, help="Run folder [default: runs/train, runs/train2, ...]."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out (default: the latest run) from its last checkpoint."),
):
    """Train a DCGAN; with no arguments, s1 on the built-in runes."""
    from runegen.data import load_dataset
    from runegen.train import TrainConfig, load_config

    given = TrainConfig(data=data, preset=preset.value, epochs=epochs, batch_size=batch_size,
                        lr_g=lr_g, lr_d=lr_d, beta_1=beta_1, seed=seed, latent_dim=latent_dim,
                        update=update.value, precision=precision.value,
                        checkpoint_every=checkpoint_every, samples_per_class=samples_per_class)
    if resume:
        out = out or _latest_run()
        config = load_config(out)
        for field in dataclasses.fields(TrainConfig):
            if field.name in ("epochs", "checkpoint_every") or _is_default(ctx, field.name):
                continue
            if getattr(given, field.name) != getattr(config, field.name):
                raise UsageError(f"--resume: --{field.name.replace('_', '-')} cannot change "
                                 f"(the run in {out} used {getattr(config, field.name)!r})")
        config = dataclasses.replace(config, epochs=given.epochs if not _is_default(ctx, "epochs") else config.epochs,
                                     checkpoint_every=given.checkpoint_every)
    else:
        config = given
        out = _fresh_run_folder(out)

    dataset = load_dataset(config.data, config.samples_per_class, config.seed)
    if len(dataset) < config.batch_size:
        raise UsageError(f"--batch-size {config.batch_size} is larger than the dataset ({len(dataset)} images)")
    _check_writable(out)
    _train(config, out, dataset, resume)


def _train(config, out: Path, dataset, resume: bool) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from runegen import atomic
    from runegen.train import Run, TrainingDiverged, resolve_precision, save_config

    console = Console(stderr=True)
    config = dataclasses.replace(config, precision=resolve_precision(config.precision))
    console.print(f"[bold]runegen train[/] {config.preset} ({config.precision}) on {dataset.name} "
                  f"({len(dataset):,} images, {len(dataset.class_names)} classes) -> {out}")
    run = Run(config, out, dataset)
    if resume:
        run.restore()
        console.print(f"resumed at epoch {int(run.epoch.numpy()) + 1}, step {int(run.step_in_epoch.numpy())}")
    else:
        (out / "samples").mkdir(parents=True, exist_ok=True)
        save_config(config, out)
        atomic.write_text(out / "classes.json", json.dumps(list(dataset.class_names)) + "\n")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn(), TextColumn("{task.fields[stats]}"))
    started = time.perf_counter()
    try:
        with Progress(*columns, console=console) as progress:
            # A terminal keeps each epoch's finished bar; a log file gets one plain line per epoch.
            run.train(progress, log=lambda line: console.is_terminal or console.print(
                line, soft_wrap=True, highlight=False))
    except TrainingDiverged as error:
        console.print(f"[red]error:[/] {error}", highlight=False)
        raise typer.Exit(1)
    except KeyboardInterrupt as error:
        console.print(f"[yellow]{error or 'interrupted'}[/]; continue with: runegen train --resume --out {out}",
                      highlight=False)
        raise typer.Exit(130)
    generator = run.finish()
    console.print(f"done in {time.perf_counter() - started:.0f} s: {generator}, "
                  f"samples in {out / 'samples'}, {out / 'progress.gif'}", highlight=False)


def _latest_run() -> Path:
    runs = sorted(Path("runs").glob("train*"), key=lambda p: p.stat().st_mtime)
    if not runs:
        raise UsageError("--resume: no run in runs/; pass --out DIR")
    return runs[-1]


def _fresh_run_folder(out: Optional[Path]) -> Path:
    if out is None:  # runs/train, runs/train2, ... as Ultralytics does: a rerun never overwrites
        out = next(Path("runs") / f"train{n if n > 1 else ''}" for n in range(1, 10_000)
                   if not (Path("runs") / f"train{n if n > 1 else ''}").exists())
    elif out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"--out {out}: exists and is not empty; choose a new folder or add --resume")
    return out


def _check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise UsageError(f"--out {folder}: not writable ({error.strerror or error})") from None


@app.command("export")
def export_command(
    model: Path = typer.Argument(..., help="Trained generator (.keras), e.g. runs/train/generator.keras."),
    format: list[str] = typer.Option(["all"], "--format", "-f", help="onnx, tflite or all (repeat or comma-separate)."),
    quantize: Optional[list[str]] = typer.Option(None, "--quantize", "-q", help="Variants to write: f32, int8 (onnx); f32, f16, dynamic, int8, int8io (tflite); all [default: every variant of the formats]."),
    out: Optional[Path] = typer.Option(None, help="Folder for the files [default: beside the model, in export/]."),
):
    """Export a trained generator to ONNX and TFLite; every file is checked against Keras."""
    from rich.table import Table

    from runegen.formats import select_variants

    try:
        variants = select_variants(_split(format), _split(quantize or []))
    except ValueError as error:
        raise UsageError(f"--format/--quantize: {error}") from None
    from runegen.export import export, load_keras_generator

    generator = load_keras_generator(model)
    out = out or model.parent / "export"
    _check_writable(out)
    console = _table_console()
    with console.status(f"exporting {model} to {len(variants)} variant(s)..."):
        results = export(generator, variants, out)
    table = Table("format", "variant", "file", "size", "max err", "mean err", "PSNR", "status",
                  title=f"runegen export: {model} -> {out}")
    for result in results:
        parity = result.parity
        table.add_row(result.variant.format, result.variant.name, result.path.name,
                      f"{result.size_bytes / 1e6:.2f} MB" if result.size_bytes else "-",
                      f"{parity.max_abs:.2e}" if parity else "-", f"{parity.mean_abs:.2e}" if parity else "-",
                      f"{parity.psnr:.1f} dB" if parity else "-",
                      "✅ ok" if result.ok else f"❌ FAIL: {result.error}")
    console.print(table)
    console.print(f"side by side (Keras on top, then each file that passed): "
                  f"{out / (model.stem + '_parity.png')}", highlight=False)
    if not all(result.ok for result in results):
        raise typer.Exit(1)


def _table_console():
    """A console for result tables: never narrower than the table when output goes to a file."""
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=max(console.width, 140))


def _split(values: list[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


@app.command("bench")
def bench_command(
    model: Path = typer.Argument(..., help="MODEL.keras, a run folder, or a folder of exported files."),
    device: str = typer.Option("cpu", help="cpu, cuda, tensorrt, openvino, coreml, dml, rocm, or all available."),
    threads: str = typer.Option("1,all", help="Thread counts to sweep, comma-separated ('all' = every core)."),
    batches: str = typer.Option("1,8,64,256", help="Batch sizes for throughput, comma-separated."),
    min_seconds: float = typer.Option(1.0, callback=_positive("--min-seconds"), help="Minimum timed seconds per measurement."),
    runs: int = typer.Option(10, callback=_positive("--runs"), help="Minimum timed calls per measurement."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write every raw figure and the environment as JSON."),
    markdown_out: Optional[Path] = typer.Option(None, "--markdown", help="Write the table as Markdown."),
    compare: Optional[Path] = typer.Option(None, help="An earlier --json: print the ratios to it."),
):
    """Parity against Keras and speed, for every exported variant, in one run."""
    from rich.console import Console

    from runegen import atomic
    from runegen.bench import bench, report, resolve_devices

    thread_counts = _integers(threads, "--threads", all_value=os.cpu_count() or 1)
    batch_sizes = _integers(batches, "--batches")
    devices = resolve_devices(device)
    old = _read_json(compare, "--compare") if compare else None
    for target in (json_out, markdown_out):
        if target is not None and not target.parent.is_dir():
            raise UsageError(f"{target}: cannot write (no folder {target.parent})")
    status = Console(stderr=True)
    with status.status("benchmarking...") as spinner:
        results = bench(model, devices, thread_counts, batch_sizes, min_seconds, runs,
                        progress=lambda message: spinner.update(f"benchmarking: {message}"))
    report.print_table(results, _table_console())
    if old is not None:
        for line in report.compare(results, old):
            typer.echo(line)
    if json_out:
        atomic.write_text(json_out, json.dumps(results, indent=2, default=str) + "\n")
    if markdown_out:
        atomic.write_text(markdown_out, report.markdown(results))


def _integers(text: str, flag: str, all_value: int | None = None) -> list[int]:
    try:
        values = [all_value if part == "all" and all_value else int(part) for part in _split([text])]
    except ValueError:
        raise UsageError(f"{flag} {text}: expected comma-separated whole numbers") from None
    if not values or min(values) < 1:
        raise UsageError(f"{flag} {text}: expected numbers >= 1")
    return list(dict.fromkeys(values))


def _read_json(path: Path, flag: str) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise UsageError(f"{flag} {path}: not a readable bench JSON ({error})") from None


@app.command()
def generate(
    model: Path = typer.Argument(..., help="Generator file: .onnx, .tflite (no TensorFlow needed) or .keras."),
    count: int = typer.Option(16, "--count", "-n", min=1, max=1024, help="Images to draw (1-1024)."),
    seed: int = typer.Option(0, min=0, help="Seed for the latent draws: same seed, same images."),
    out: Path = typer.Option(Path("samples.png"), help="PNG grid to write."),
    columns: Optional[int] = typer.Option(None, callback=_positive("--columns"), help="Grid columns (default: about the square root of the count)."),
    threads: Optional[int] = typer.Option(None, callback=_positive("--threads"), help="CPU threads for the runtime (default: all cores)."),
    device: str = typer.Option("cpu", help="cpu; for .onnx also an onnxruntime accelerator: cuda, tensorrt, openvino, coreml, dml."),
):
    """Draw images with a trained generator and write them as one PNG grid."""
    from runegen import images
    from runegen.runtime import latents, load_generator

    if out.suffix.lower() != ".png":
        raise UsageError(f"--out {out}: must end in .png")
    if not out.parent.is_dir():  # fail before loading the model, not after
        raise UsageError(f"--out {out}: cannot write (no folder {out.parent})")
    generator = load_generator(model, threads=threads, device=device)
    glyphs = images.to_uint8(generator.generate(latents(count, generator.latent_dim, seed)))
    try:
        images.save_png(images.grid(glyphs, columns=min(columns or 0, count) or None), out)
    except OSError as error:
        raise UsageError(f"--out {out}: cannot write ({error.strerror or error})") from None
    preset = generator.metadata.get("preset")
    typer.echo(f"wrote {out}: {count} images (seed {seed}) from {model} "
               f"({generator.format}{f', {preset}' if preset else ''}, latent {generator.latent_dim}, "
               f"{generator.device})")


@data_app.command("preview")
def data_preview(
    data: str = typer.Option("runes", help="Same as train --data."),
    out: Path = typer.Option(Path("data_preview.png"), help="PNG to write."),
    per_class: int = typer.Option(12, callback=_positive("--per-class"), help="Samples shown per class (one row each)."),
    max_classes: int = typer.Option(24, callback=_positive("--max-classes")),
    seed: int = typer.Option(0, min=0),
):
    """Write a PNG grid of the training data, one row per class."""
    import numpy as np

    from runegen import images
    from runegen.data import load_dataset

    if out.suffix.lower() != ".png":
        raise UsageError(f"--out {out}: must end in .png")
    dataset = load_dataset(data, samples_per_class=per_class, seed=seed)
    rows = [np.flatnonzero(dataset.labels == c)[:per_class] for c in range(len(dataset.class_names))]
    picked = np.concatenate([r for r in rows if len(r)][:max_classes])
    glyphs = images.to_uint8(dataset.images[picked])
    try:
        images.save_png(images.grid(glyphs, columns=per_class), out)
    except OSError as error:
        raise UsageError(f"--out {out}: cannot write ({error.strerror or error})") from None
    typer.echo(f"wrote {out}: {len(picked)} samples of {min(len(dataset.class_names), max_classes)} "
               f"classes ({', '.join(dataset.class_names[:max_classes])})")


def main() -> None:
    """Console entry point: usage errors become one line on stderr and exit code 2."""
    try:
        code = app(standalone_mode=False)
    except typer.Abort:
        code = 130
    except UsageError as error:
        print(f"runegen: error: {error}", file=sys.stderr)
        code = 2
    except TyperException as error:  # click's UsageError and friends: bad flags, exit code 2
        print(f"runegen: error: {error.format_message()}", file=sys.stderr)
        code = getattr(error, "exit_code", 2)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
