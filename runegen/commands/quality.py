"""`runegen evaluate` and `runegen classifier`: measuring a generator.

`evaluate` needs scipy and a classifier: the shipped ONNX one runs without TensorFlow.
`classifier` trains one (TensorFlow) and writes it as .keras and .onnx."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from runegen.commands.options import (MAX_SCORED, MAX_SEED, check_output_file, check_outside_the_data,
                                     check_report_files, flag, given_path, note_reference_size, note_threads,
                                     note_undescribed, plain, require, running, table_console)
from runegen.core.devices import MAX_THREADS
from runegen.core.errors import DataError, ModelFileError, UsageError
from runegen.training.config import TrainConfig

def evaluate_command(
    model: Optional[Path] = typer.Argument(None, parser=given_path("MODEL"), help="Generator: .keras, .onnx or .tflite.", show_default="the shipped rune generator"),
    data: str = typer.Option("runes", parser=given_path("--data", str), help="The real data to compare with: 'runes', 'mnist' or a path (as train --data)."),
    classifier: Optional[Path] = typer.Option(None, parser=given_path("--classifier"), help="Feature classifier: .onnx, or .keras (its .onnx twin beside it is used where onnxruntime is installed).", show_default="the shipped rune classifier for the runes and for data of one class, such as a flat folder; else one trained now"),
    samples: int = typer.Option(TrainConfig.eval_samples, min=10, max=MAX_SCORED, help="Generated (and real) images to compare (as many as a training run scores)."),
    threads: Optional[int] = typer.Option(None, min=1, max=MAX_THREADS, help="CPU threads for the generator's runtime.", show_default="all cores"),
    json_out: Optional[Path] = typer.Option(None, "--json", parser=given_path("--json"), help="Also write the scores as JSON."),
):
    """Score a generator with offline metrics: FD, KID, precision/recall, density/coverage, recognisability."""
    from rich.table import Table

    from runegen.core import atomic
    from runegen.data import load_dataset
    from runegen.quality.metrics import READINGS
    from runegen.runtime import load_generator, shipped_generator

    check_report_files({"--json": json_out})
    check_outside_the_data(json_out, "--json", data)
    model = model or shipped_generator()
    note_threads("--threads", [threads] if threads else [])
    generator = load_generator(model, threads=threads)
    with running(model):  # a damaged file that loads: one line first, not a traceback from the scoring
        generator.generate(generator.inputs(1, 0))
    note_undescribed(generator)
    require("scipy", "the metrics need scipy: pip install scipy (or 'runegen[train]')")
    # The built-in runes: only their names are needed here (the reference is drawn apart); other
    # data ignores samples_per_class.
    with flag("--data", DataError):
        dataset = load_dataset(data, samples_per_class=1)
    if generator.num_classes and generator.classes != list(dataset.class_names):
        told = ((", ".join(generator.classes), ", ".join(dataset.class_names))  # by name where as many
                if len(generator.classes) == len(dataset.class_names) else (len(generator.classes), len(dataset.class_names)))
        raise UsageError(f"{model} was trained on other classes than {dataset.asked}'s ({told[0]} vs {told[1]})")
    from runegen.quality.scorer import Scorer

    console = table_console()
    with flag("--data", DataError), flag("--classifier", ModelFileError):
        scorer = Scorer.for_dataset(dataset, samples, classifier, log=lambda line: typer.echo(line, err=True))
    note_reference_size("--samples", samples, dataset)  # data too small to score at all is refused above
    if generator.classes and generator.classes != list(dataset.class_names):  # said, not refused:
        # scoring a generator against other data can be meant (runes against a folder of runes)
        trained_on = generator.classes[0] if len(generator.classes) == 1 else f"{len(generator.classes)} classes"
        typer.echo(f"note: {model} was trained on other data ({trained_on}) than {dataset.asked}; "
                   "--data names the data to score against", err=True)
    with console.status(plain(f"scoring {samples} samples of {model} ...")):
        scores = scorer.score_generator(generator)
    if json_out is not None:  # before the table: a table piped into `head` ends the printing early
        record = {"model": str(model), "format": generator.format, "data": dataset.asked, **scores}
        atomic.write_text(json_out, json.dumps(record, indent=2) + "\n")
    table = Table("metric", "value", "reading", title=f"runegen evaluate: {model} vs {dataset.asked}")
    for key, reading in READINGS.items():
        if key in scores:
            value = scores[key]
            text = (f"{value} / {scores['num_classes']}" if key == "class_coverage"
                    else f"{value:.2f}" if key in ("fd", "kid") else f"{value:.3f}")
            table.add_row(key, text, reading)
    console.print(table)


def classifier_command(
    data: str = typer.Option("runes", parser=given_path("--data", str), help="Data to learn: 'runes', 'mnist' or a path (as train --data)."),
    out: Path = typer.Option(..., parser=given_path("--out"), help="Where to write the classifier (.keras); its .onnx twin is written beside it."),
    seed: int = typer.Option(0, min=0, max=MAX_SEED, help="Seed for the built-in runes drawn and for the classifier's weights, dropout, shuffle and outliers."),
):
    """Train the feature classifier that `evaluate` and training's metrics use."""
    from runegen.data import load_dataset

    check_output_file(out, "--out", ".keras", makes_folders=True)
    if out.suffix != ".keras":  # in lower case: Keras saves to nothing else (.KERAS failed after training)
        raise UsageError(f"--out {out}: must end in .keras")
    for written in (out, out.with_suffix(".onnx")):  # the ONNX twin is written beside it
        if written.exists():
            raise UsageError(f"--out {out}: {written} exists; choose a new name")
    require("tensorflow", "training a classifier needs TensorFlow: pip install 'runegen[train]'")
    from runegen.quality.classifier import accuracy, train_and_save

    with flag("--data", DataError):
        dataset = load_dataset(data, TrainConfig.samples_per_class, seed)  # the runes a run trains on
    if len(dataset.class_names) < 2:
        raise UsageError(f"--data {data}: one class (no labels), nothing for a classifier to tell apart; "
                         "evaluate and training score such data with the rune classifier's features")
    classifier = train_and_save(dataset, out, seed=seed)  # and out.with_suffix(".onnx")
    held_out = load_dataset(data, samples_per_class=50, seed=seed + 90_001) if data == "runes" else dataset
    typer.echo(f"wrote {out} and {out.with_suffix('.onnx')}: {len(dataset.class_names)} classes, accuracy {accuracy(classifier, held_out):.4f} "
               f"on {'held-out' if data == 'runes' else 'training'} data")
