"""`runegen export`, `bench` and `generate`: shipping the generator to the edge."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path
from typing import Optional

import typer

from runegen.commands.options import (MAX_SCORED, check_output_file, check_report_files, check_writable, device_option,
                                     flag, given_path, integers, note_threads, note_undescribed, plain,
                                     positive, read_json, running, split_list, table_console)
from runegen.bench.config import MAX_BATCH, BenchConfig
from runegen.core.devices import MAX_THREADS, ONNX_PROVIDERS, usable_cores
from runegen.core.errors import DeviceError, RunegenError, UsageError, reason
from runegen.core.formats import BY_SUFFIX, EXPORT_FORMATS, EXPORTED_SUFFIXES

BENCH = BenchConfig()  # the bench options' defaults are the config's
OTHER_PROVIDERS = ", ".join(name for name in ONNX_PROVIDERS if name not in ("cpu", "cuda"))  # for generate's help
VARIANT_NAMES = "; ".join(f"{', '.join(v.name for v in fmt.variants)} ({name})" for name, fmt in EXPORT_FORMATS.items())


def export_command(
    model: Path = typer.Argument(..., parser=given_path("MODEL"), help="Trained generator (.keras), e.g. runs/train/generator.keras."),
    format: list[str] = typer.Option(["all"], "--format", "-f", help=f"{', '.join(EXPORT_FORMATS)} or all (repeat or comma-separate)."),
    quantize: Optional[list[str]] = typer.Option(None, "--quantize", "-q", help=f"Variants to write: {VARIANT_NAMES}; all.", show_default="every variant of the formats"),
    out: Optional[Path] = typer.Option(None, parser=given_path("--out"), help="Folder for the files.", show_default="beside the model, in export/"),
):
    """Export a trained generator to ONNX and TFLite; every file is checked against Keras."""
    from rich.table import Table

    from runegen.core.formats import select_variants

    if quantize is not None and not split_list(quantize):  # "" read as no list: every variant
        raise UsageError(f"--quantize: empty; give {VARIANT_NAMES} or all")
    with flag("--format/--quantize:", RunegenError):
        variants = select_variants(split_list(format), split_list(quantize or []))
    if out is not None and out.suffix.lower() in BY_SUFFIX and not out.is_dir():  # was made a folder
        raise UsageError(f"--out {out}: export writes a folder of files, not a file; give a folder")
    from runegen.export import export, load_keras_generator
    from runegen.export.exporter import of_other_weights, parity_picture

    generator = load_keras_generator(model)
    out_flag = "--out" if out is not None else "export folder"  # the default's was named --out
    out = out or model.parent / "export"
    check_writable(out, out_flag)
    _check_export_targets(out, out_flag, model.stem, variants)
    note_undescribed(generator)  # after the checks: bad input is one line
    console = table_console()
    earlier = [v.filename(model.stem) for v in variants if (out / v.filename(model.stem)).exists()]
    with console.status(plain(f"exporting {model} to {len(variants)} variant(s)...")):
        results = export(generator, variants, out)
    table = Table("format", "variant", "file", "size", "max err", "mean err", "PSNR", "status",
                  title=f"runegen export: {model} -> {out}")
    for result in results:
        parity = result.parity
        table.add_row(result.variant.format, result.variant.name, result.path.name,
                      f"{result.size_bytes / 1e6:.2f} MB" if result.ok else "-",
                      f"{parity.max_abs:.2e}" if parity else "-", f"{parity.mean_abs:.2e}" if parity else "-",
                      f"{parity.psnr:.1f} dB" if parity else "-",
                      "✅ ok" if result.ok else f"❌ FAIL: {result.error}")
    console.print(table)
    pictures = [parity_picture(out, model.stem, fmt) for fmt in dict.fromkeys(v.format for v in variants)]
    console.print(f"side by side (Keras on top, then each file that passed): "
                  f"{', '.join(map(str, pictures))}", highlight=False)
    replaced = [r.path.name for r in results if r.ok and r.path.name in earlier]  # a failed one kept the old
    if replaced:
        typer.echo(f"note: replaced the earlier {', '.join(replaced)} in {out}", err=True)
    others = of_other_weights(generator, out, [r.path for r in results if r.ok])
    if others:
        typer.echo(f"note: {out} also holds {', '.join(p.name for p in others)}, exported from other weights "
                   f"than {model}'s (or not known to be its): bench rates every file of a folder against "
                   "one model; give each model its own --out", err=True)
    if not all(result.ok for result in results):
        raise typer.Exit(1)


def _check_export_targets(out: Path, out_flag: str, stem: str, variants) -> None:
    """Refuse, before any conversion, a file export could not write: a folder where a file goes, a
    link into a missing folder, a socket (each was found at the rename, after the work, exit 1)."""
    from runegen.core.atomic import written_path
    from runegen.export.exporter import parity_picture

    files = [out / v.filename(stem) for v in variants]
    pictures = [parity_picture(out, stem, fmt) for fmt in dict.fromkeys(v.format for v in variants)]
    beside = [sidecar for v, path in zip(variants, files) if (sidecar := EXPORT_FORMATS[v.format].sidecar(path))]
    in_the_way = [path.name for path in files + beside + pictures if path.is_dir()]
    if in_the_way:
        are = "is a folder" if len(in_the_way) == 1 else "are folders"
        raise UsageError(f"{out_flag} {out}: {', '.join(in_the_way)} in it {are}, where export writes a file; "
                         "move it or give another --out")
    for path in files + pictures:
        check_output_file(path, out_flag)
    for v, path in zip(variants, files):  # a sidecar goes beside the file a link points to
        if (sidecar := EXPORT_FORMATS[v.format].sidecar(written_path(path))) is not None:
            check_output_file(sidecar, out_flag)


def bench_command(
    model: Path = typer.Argument(..., parser=given_path("MODEL"), help=f"MODEL.keras, a run folder, a model folder, a folder of exported files, or one exported {EXPORTED_SUFFIXES} file."),
    device: str = typer.Option(",".join(BENCH.devices), callback=device_option, help=f"{', '.join(ONNX_PROVIDERS)} (any case), an onnxruntime execution provider by its own name, or all: every available one of the short names."),
    threads: str = typer.Option("1,all", help="Thread counts to sweep, comma-separated ('all' = every core)."),
    batches: str = typer.Option(",".join(map(str, BENCH.batches)), help=f"Batch sizes for throughput, comma-separated (1-{MAX_BATCH})."),
    min_seconds: float = typer.Option(BENCH.min_seconds, callback=positive("--min-seconds"), help="Minimum timed seconds per measurement."),
    runs: int = typer.Option(BENCH.runs, callback=positive("--runs"), help="Minimum timed calls per measurement."),
    quality_samples: int = typer.Option(BENCH.quality_samples, min=0, max=MAX_SCORED, help="Images per row scored by the rune classifier (recognisability; 0: none)."),
    json_out: Optional[Path] = typer.Option(None, "--json", parser=given_path("--json"), help="Write every raw figure and the environment as JSON."),
    markdown_out: Optional[Path] = typer.Option(None, "--markdown", parser=given_path("--markdown"), help="Write the table as Markdown."),
    compare: Optional[Path] = typer.Option(None, parser=given_path("--compare"), help="An earlier --json: print the ratios to it."),
    profile: Optional[Path] = typer.Option(None, parser=given_path("--profile"), help="Folder for each ONNX row's onnxruntime profile (per-op times; open in chrome://tracing or Perfetto)."),
    accept_failures: bool = typer.Option(False, "--accept-failures", help="Exit 0 even when rows fail to run (❌) or miss their parity tolerance (❎).", show_default="off"),
):
    """Parity against Keras and speed, for every exported variant, in one run."""
    from rich.console import Console

    from runegen.bench import report
    from runegen.bench.plan import bench, resolve_devices
    from runegen.bench.sources import locate
    from runegen.core import atomic

    with flag("--device", DeviceError):
        devices = resolve_devices(device)
    config = BenchConfig(devices, integers(threads, "--threads", all_value=min(usable_cores(), MAX_THREADS), most=MAX_THREADS),
                         integers(batches, "--batches", most=MAX_BATCH), min_seconds, runs, profile, quality_samples)
    old = read_json(compare, "--compare") if compare else None
    if old is not None and not report.is_report(old):
        raise UsageError(f"--compare {compare}: not a runegen bench --json (no rows of format, variant, "
                         "runtime, device, threads and figures)")
    check_report_files({"--json": json_out, "--markdown": markdown_out})
    if profile is not None:
        locate(model)  # a model that is none is refused before --profile's folder is made
        check_writable(profile, "--profile")
    note_threads("--threads", config.threads)
    status = Console(stderr=True)
    with status.status("benchmarking...") as spinner:
        results = bench(model, config, progress=lambda message: spinner.update(plain(f"benchmarking: {message}")))
    # The reports first: a table piped into `head` ends the printing early (a broken pipe).
    if json_out:
        atomic.write_text(json_out, json.dumps(results, indent=2, default=str) + "\n")
    if markdown_out:
        atomic.write_text(markdown_out, report.markdown(results))
    report.print_table(results, table_console())
    if old is not None:
        for line in report.compare(results, old):
            typer.echo(line)
    failures = report.failures(results)
    if failures and not accept_failures:
        typer.echo(f"{failures}; exit code 1 (--accept-failures: 0)", err=True)
        raise typer.Exit(1)


def generate(
    model: Optional[Path] = typer.Argument(None, parser=given_path("MODEL"), help="Generator file: .onnx, .tflite (no TensorFlow needed) or .keras.", show_default="the shipped rune generator"),
    rune: Optional[str] = typer.Option(None, help="Conditional models: the rune to draw, as a character (ᚠ) or a name (fehu)."),
    class_name: Optional[str] = typer.Option(None, "--class", help="Conditional models: the class to draw, by name or index.", show_default="every class in turn"),
    code: Optional[str] = typer.Option(None, help="Models trained with latent codes: the code to draw (0..codes-1), or 'all': every code the model draws, one per column.", show_default="drawn at random, as in training"),
    count: Optional[int] = typer.Option(None, "--count", "-n", min=1, max=1024, help="Images to draw (1-1024).", show_default="16; with --code all, 4 of each code"),
    seed: int = typer.Option(0, min=0, help="Seed for the latent draws: same seed, same images."),
    out: Path = typer.Option(Path("samples.png"), parser=given_path("--out"), help="PNG grid to write."),
    columns: Optional[int] = typer.Option(None, callback=positive("--columns"), help="Grid columns (default: about the square root of the count; with --code all, one per code)."),
    threads: Optional[int] = typer.Option(None, min=1, max=MAX_THREADS, help="CPU threads for the runtime.", show_default="all cores"),
    device: str = typer.Option("cpu", callback=device_option, help=f"cpu; for .keras also cuda or gpu (TensorFlow's first GPU); for .onnx also an onnxruntime execution provider: cuda (IO binding + CUDA graphs), {OTHER_PROVIDERS}, or one by its own name; .tflite runs on the cpu only. Any case."),
):
    """Draw images with a trained generator and write them as one PNG grid."""
    import numpy as np

    from runegen.core import images
    from runegen.runtime import load_generator, shipped_generator

    check_output_file(out, "--out", ".png")  # before loading the model, not after
    if rune is not None and class_name is not None:
        raise UsageError("--rune and --class name the same thing: give one")
    model = model or shipped_generator(conditional=rune is not None or class_name is not None)
    if code is not None and (rune is not None or class_name is not None):
        raise UsageError("--code is for models trained with latent codes, --rune/--class for conditional ones: give one")
    generator = load_generator(model, threads=threads, device=device)
    every_code = code is not None and code.strip().lower() == "all"
    codes = _shown_codes(generator, code, every_code) if code is not None else None
    count = count or (4 * len(codes) if every_code else 16)
    labels = np.resize(codes, count) if codes is not None else _labels(generator, rune, class_name, count)
    shown = min(count, len(codes)) if every_code else 0
    if every_code and columns is None:
        columns = len(codes)  # one code per column
    elif every_code and columns < count and columns % shown:  # honoured, but say what it gives up
        typer.echo(f"note: --columns {columns}: the {shown} codes shown no longer take one column each "
                   f"(each row goes on where the last ended); a multiple of {shown} keeps them so", err=True)
    # The notes once the input is known good: bad input is one line on stderr.
    note_threads("--threads", [threads] if threads else [])
    note_undescribed(generator)
    with running(model):
        glyphs = images.to_uint8(generator.generate(generator.inputs(count, seed, labels)))
    try:
        images.save_png(images.grid(glyphs, columns=min(columns or 0, count) or None), out)
    except OSError as error:
        raise UsageError(f"--out {out}: cannot write ({reason(error)})") from None
    preset = generator.metadata.get("preset")
    drawn = f"{count} image{'s' if count != 1 else ''}"
    what = (f"{count} {generator.classes[labels[0]]}" if rune or class_name
            else f"{drawn} of the first {count} of the {len(codes)} codes it draws"
            if every_code and count < len(codes)
            else f"{drawn} of the {len(codes)} codes it draws" if every_code
            else f"{drawn} of code {int(code)}" if codes is not None else drawn)
    typer.echo(f"wrote {out}: {what} (seed {seed}) from {model} "
               f"({generator.format}{f', {preset}' if preset else ''}, latent {_latent_text(generator)}, "
               f"{generator.device})")


def _labels(generator, rune: Optional[str], class_name: Optional[str], count: int):
    """The class of each image: the one asked for, or every class in turn (None if unconditional)."""
    import numpy as np

    asked = rune if rune is not None else class_name
    if not generator.num_classes:
        if asked is not None:
            raise UsageError(f"{generator.path} is not class-conditional{_undescribed(generator)}: --rune/--class "
                             "need a model trained with --conditional")
        return None
    if asked is None:
        return np.arange(count) % generator.num_classes
    classes = generator.classes
    if rune is not None:
        from runegen.data.runes import RUNES

        names = {r.char: r.name for r in RUNES}
        asked = names.get(rune.strip(), rune.strip())
    def key(name: str) -> str:  # as text: a name typed or stored decomposed ("e" and an accent) is the same name
        return unicodedata.normalize("NFC", name.strip()).lower()

    lookup = {key(name): i for i, name in enumerate(classes)}
    index = lookup.get(key(asked))
    number = _whole_number(asked) if class_name is not None else None  # --class also takes an index
    if index is None and number is not None and number < len(classes):
        index = number
    if index is None:
        flag = "--rune" if rune is not None else "--class"
        raise UsageError(f"{flag} {asked}: not a class of {generator.path.name} "
                         f"(known: {', '.join(classes)})")
    return np.full(count, index)


def _shown_codes(generator, code: str, every_code: bool):
    """The latent codes to draw: the one asked for, or with 'all' every code the model draws (a
    code the learned prior gives no share is never drawn, and G never learned to draw it)."""
    import numpy as np

    codes, weights = generator.codes, generator.code_weights
    if not codes:
        raise UsageError(f"{generator.path} has no latent codes{_undescribed(generator)}: --code needs a model "
                         "trained with --codes")
    if every_code:
        return np.arange(codes) if weights is None else np.flatnonzero(weights > 0)
    number = _whole_number(code)
    if number is None or number >= codes:
        raise UsageError(f"--code {code}: expected a code in 0..{codes - 1} or 'all'")
    if weights is not None and weights[number] == 0:
        typer.echo(f"note: this model never draws code {number} (no share in its code prior): "
                   "expect no rune", err=True)
    return np.array([number])


def _undescribed(generator) -> str:
    """For an error about classes or codes: where their metadata was looked for, where it was missing."""
    if generator.described:
        return ""
    place = BY_SUFFIX[generator.path.suffix.lower()].metadata_place.format(name=generator.path.name)
    return f" as far as runegen can tell (no metadata: {place})"


def _whole_number(text: str) -> int | None:
    """`text` as a whole number in ASCII digits, else None ("²" is a digit to str.isdigit, not to int)."""
    text = text.strip()
    return int(text) if text.isascii() and text.isdecimal() else None


def _latent_text(generator) -> str:
    classes, codes = generator.num_classes, generator.codes
    if classes:
        return f"{generator.latent_dim - classes} + {classes} classes"
    return f"{generator.latent_dim - codes} + {codes} codes" if codes else str(generator.latent_dim)
