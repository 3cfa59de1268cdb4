"""Turn finished training runs into the shipped models (runegen/models/, linked as models/) and
record their measured figures in runegen/models/scores.json (MODEL_CARD.md, written by hand, quotes
them).

    python scripts/build_models.py runs/ship/runes-s1 runs/ship/runes-s1-conditional \
        [--seeds runs/seeds/seed0 runs/seeds/seed1 runs/seeds/seed2 [--seeds-epoch 15]]
    python scripts/build_models.py --rescore

For each run folder (named like its target: runes-s1, runes-s1-conditional): export the float32
ONNX and full-int8 TFLite files through runegen's exporter (each checked against Keras), copy
generator.keras + config.json + classes.json (+ code_weights.json) + the exports + a sample grid, score the .keras,
.onnx and .tflite files with `runegen evaluate`'s Scorer, and read the training time from the run's
metrics.csv. `--seeds` adds a mean ± std table of the last evaluation of default runs. A model not
rebuilt keeps its entry; `--rescore` scores the shipped files again in place, as after a metric
was added, and says which earlier figures moved. Everything measured goes to runegen/models/scores.json, which
runegen/models/MODEL_CARD.md quotes.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shutil
import statistics
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "runegen" / "models"
SHIPPED_VARIANTS = ("onnx", "f32"), ("tflite", "int8")
DRAWN_CODE = 1e-3  # a code drawn less often than this is left out of samples.png
CARD_METRICS = ("fd", "kid", "precision", "recall", "density", "real_coverage", "recognisability", "class_coverage",
                "class_accuracy")


def build(run: Path) -> dict:
    from runegen.core import images
    from runegen.core.formats import FORMATS
    from runegen.core.latents import CODE_WEIGHTS_FILE
    from runegen.export import export, load_keras_generator
    from runegen.runtime import load_generator

    target = MODELS / run.name
    config = json.loads((run / "config.json").read_text())
    with tempfile.TemporaryDirectory() as scratch:
        variants = [v for f, name in SHIPPED_VARIANTS for v in FORMATS[f].variants if v.name == name]
        results = export(load_keras_generator(run / "generator.keras"), variants, Path(scratch))
        failed = [r for r in results if not r.ok]
        if failed:
            raise SystemExit(f"{run}: export failed: {failed[0].error}")
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        for name in ("generator.keras", "config.json", "classes.json", CODE_WEIGHTS_FILE):
            if (run / name).exists() or name != CODE_WEIGHTS_FILE:  # code weights: with a code prior
                shutil.copy2(run / name, target / name)
        for result in results:
            for file in [result.path, result.path.with_name(result.path.name + ".json")]:
                if file.exists():
                    shutil.copy2(file, target / file.name)

    generators = {file: load_generator(target / file) for file in ["generator.keras", *(r.path.name for r in results)]}
    scores = scores_of(config, generators)
    keras_generator = generators["generator.keras"]
    # 4 draws of each class (conditional) or latent code side by side, 12 or 24 glyphs a row; of
    # the codes, those the model draws (a code its prior never draws has no real rune behind it).
    if keras_generator.num_classes:
        labels, columns = np.repeat(np.arange(keras_generator.num_classes), 4), 12
    elif keras_generator.codes:
        weights = keras_generator.code_weights
        drawn = np.arange(keras_generator.codes) if weights is None else np.flatnonzero(weights >= DRAWN_CODE)
        labels, columns = np.repeat(drawn, 4), 24
    else:
        labels, columns = None, 8
    grid = keras_generator.generate(keras_generator.inputs(len(labels) if labels is not None else 64, 0, labels))
    images.save_png(images.grid(images.to_uint8(grid), columns=columns), target / "samples.png")

    with open(run / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return {"name": run.name, "config": config, "epochs": len(rows),
            "train_seconds": round(sum(float(r["seconds"]) for r in rows), 1),
            "parity": {r.path.name: r.parity.as_dict() for r in results},
            "sizes": {p.name: p.stat().st_size for p in sorted(target.iterdir()) if p.is_file()},
            "scores": scores,
            "progress": [{k: r[k] for k in ("epoch", *CARD_METRICS) if r.get(k)} for r in rows if r.get("fd")]}


def scores_of(config: dict, generators: dict) -> dict:
    """`runegen evaluate`'s figures for each loaded generator (file name -> runtime Generator) of
    a model trained with `config`."""
    from runegen.data import load_dataset
    from runegen.quality.scorer import Scorer

    scorer = Scorer.for_dataset(load_dataset(config["data"], config["samples_per_class"], config["seed"]), 1000)
    return {file: scorer.score_generator(generator) for file, generator in generators.items()}


def rescore(record: dict) -> None:
    """Score every shipped file again, in place (after a metric was added), and say which of the
    figures recorded before moved by more than round-off (1e-6, relatively)."""
    from runegen.runtime import load_generator

    for model in record["models"]:
        before = model["scores"]
        model["scores"] = scores_of(model["config"], {file: load_generator(MODELS / model["name"] / file)
                                                      for file in before})
        for file, old in before.items():
            new = model["scores"][file]
            moved = {k: (v, new.get(k)) for k, v in old.items()
                     if k not in new or not math.isclose(v, new[k], rel_tol=1e-6, abs_tol=1e-9)}
            print(f"{model['name']}/{file}: {'moved: ' + str(moved) if moved else 'every earlier figure the same'}")


def seed_table(runs: list[Path], epoch: int | None = None) -> dict:
    """Mean and std over `runs` of their evaluation at `epoch` (None: the last). A longer run's
    evaluation at epoch N is what an N-epoch run ends with only where no setting depends on the
    run's length (`--lr-decay` does: score N-epoch runs at their end then)."""
    finals = []
    for run in runs:
        with open(run / "metrics.csv", newline="") as f:
            evaluated = [r for r in csv.DictReader(f) if r.get("fd") and (epoch is None or int(r["epoch"]) == epoch)]
        if not evaluated:
            raise SystemExit(f"{run}: no evaluation at epoch {epoch}")
        finals.append({k: float(evaluated[-1][k]) for k in CARD_METRICS if evaluated[-1].get(k)})
    return {k: {"values": [f[k] for f in finals], "mean": statistics.mean(f[k] for f in finals),
                "std": statistics.stdev(f[k] for f in finals) if len(finals) > 1 else 0.0}
            for k in finals[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", type=Path)
    parser.add_argument("--rescore", action="store_true", help="only score the shipped files again")
    parser.add_argument("--seeds", nargs="*", type=Path, default=[])
    parser.add_argument("--seeds-epoch", type=int, help="the seeds' evaluation at this epoch [default: the last]")
    args = parser.parse_args()
    for run in args.runs:  # before any shipped folder is replaced: a half-built set was left otherwise
        missing = [name for name in ("generator.keras", "config.json", "classes.json", "metrics.csv")
                   if not (run / name).is_file()]
        if missing:
            parser.error(f"{run}: not a finished run ({', '.join(missing)} missing)")
    path = MODELS / "scores.json"
    record = json.loads(path.read_text()) if path.exists() else {"models": []}
    if args.rescore:
        rescore(record)
    built = [build(run) for run in args.runs]
    names = [m["name"] for m in built]
    record["models"] = built + [m for m in record["models"] if m["name"] not in names]
    if args.seeds:
        record["seeds"] = {"runs": [str(p) for p in args.seeds], "epoch": args.seeds_epoch or "last",
                           "final": seed_table(args.seeds, args.seeds_epoch)}
    from runegen.core import atomic

    atomic.write_text(path, json.dumps(record, indent=2, default=float) + "\n")
    print(json.dumps(record, indent=2, default=float))


if __name__ == "__main__":
    main()
