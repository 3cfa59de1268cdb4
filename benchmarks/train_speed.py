"""Training speed and time-to-quality: runegen's default loop against the TensorFlow DCGAN tutorial's.

Same model (s1), same data (the built-in runes), same machine, one process, two parts:

1. Throughput: images/s of each loop at its own settings, in interleaved epochs (the shared
   machine's speed drifts; interleaving exposes every loop to the same drift). The tutorial loop
   is copied from tensorflow.org/tutorials/generative/dcgan (a tf.function step with two tapes,
   Adam(1e-4) with Keras' default beta_1 0.9, batch 256, `for image_batch in dataset:
   train_step(image_batch)`); runegen is timed through its real `Run.train` (per-step NaN check,
   progress, sample grids included), fp32, and bf16 where the CPU has native bf16.
2. Time-to-quality: each loop trains from scratch and is scored by `runegen evaluate`'s metrics
   (the shipped rune classifier, 1,000 samples) after every epoch; the clock counts training only,
   not the scoring. runegen trains until it reaches the target (at most its default number of
   epochs; `--full-runegen-curve`: all of them); the tutorial trains until
   `--budget-factor` times the time runegen took to first reach `--target` recognisability (or
   runegen's whole run, if it never did). The first time each curve reaches the target is the
   figure; a loop that never reaches it within its budget is reported as "not within N s".

    python benchmarks/train_speed.py [--rounds 3] [--json docs/train_speed.json] \
        [--plot docs/images/time_to_quality.png] [--skip-race | --skip-throughput]

Prints each figure as it lands. A record, not a test: nothing asserts it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from race_loops import TUTORIAL_BATCH, RunegenLoop, TutorialLoop  # noqa: E402


def cpu_name() -> str:
    """The CPU's model name with its family and model numbers: "AMD EPYC" alone names a Zen 2, 3 or
    4 alike (family 23 model 49, 25/1, 25/17), whose figures differ."""
    fields = {}
    try:
        for line in open("/proc/cpuinfo"):
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or platform.machine()
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']} model {fields['model']})"
    return name


def cpu_isa() -> str:
    """The vector extensions that decide this CPU's class here (oneDNN's kernels, bf16), and the
    limit ONEDNN_MAX_CPU_ISA holds oneDNN to, if set (the AVX2 class stood in for: its kernels,
    not its clock or caches)."""
    from runegen.training.config import cpu_flags

    flags = cpu_flags()
    names = {"avx512f": "AVX-512", "avx512_bf16": "AVX512-BF16", "amx_bf16": "AMX"}
    found = [name for flag, name in names.items() if flag in flags]
    held = os.environ.get("ONEDNN_MAX_CPU_ISA")
    return (", ".join(found) or ("AVX2 only" if "avx2" in flags else "no AVX2")) + \
        (f"; oneDNN held to {held}" if held else "")


def title(record: dict) -> str:
    return (f"s1 on {record['images']} runes, {record['cpu']} ({record.get('cpu_isa', '?')}), {record['cores']} cores, "
            f"runegen {record.get('race_precision', '?')} vs the tutorial's fp32, one run")


def say(line: str) -> None:
    print(line, flush=True)


def throughput(loops: dict, rounds: int) -> dict:
    """Interleaved epochs; round 0 (tracing) is not kept."""
    rates = {name: [] for name in loops}
    for round_index in range(rounds + 1):
        for name, loop in loops.items():
            rate = loop.one_epoch()
            if round_index:
                rates[name].append(rate)
                say(f"  {name:<16} round {round_index}: {rate:8.1f} img/s")
    return rates


def race(name: str, loop, scorer, target: float, max_epochs: int | None, budget_s: float | None,
         stop_at_target: bool = False, on_point=lambda result: None) -> dict:
    """Train `loop` epoch by epoch, scoring after each; the clock counts training only.
    `on_point` gets the result so far after every epoch (so a stopped run keeps its curve)."""
    clock, curve, reached = 0.0, [], None
    epoch = 0
    while (max_epochs is None or epoch < max_epochs) and (budget_s is None or clock < budget_s):
        started = time.perf_counter()
        loop.one_epoch()
        clock += time.perf_counter() - started
        epoch += 1
        sampler = loop.sampler
        scores = scorer.score(lambda z: np.asarray(sampler(z, training=False), np.float32), 100, 0, loop.codes,
                              loop.code_weights)
        point = {"epoch": epoch, "seconds": round(clock, 1), **{k: round(float(scores[k]), 4) for k in
                 ("fd", "recognisability", "precision", "recall")}}
        curve.append(point)
        if reached is None and point["recognisability"] >= target:
            reached = point["seconds"]
        say(f"  {name:<9} epoch {epoch:3d}  {clock:7.1f} s  FD {point['fd']:7.2f}  "
            f"recognisability {point['recognisability']:.3f}  precision {point['precision']:.3f}  "
            f"recall {point['recall']:.3f}" + (f"   <- {target} reached" if reached == point["seconds"] else ""))
        on_point({"curve": curve, "seconds_to_target": reached, "trained_s": round(clock, 1)})
        if stop_at_target and reached is not None:
            break
    return {"curve": curve, "seconds_to_target": reached, "trained_s": round(clock, 1)}


def plot(races: dict, target: float, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from runegen.core import atomic

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for name, result in races.items():
        seconds = [p["seconds"] for p in result["curve"]]
        left.plot(seconds, [p["recognisability"] for p in result["curve"]], marker=".", label=name)
        right.plot(seconds, [p["fd"] for p in result["curve"]], marker=".", label=name)
        if result["seconds_to_target"] is not None:
            left.axvline(result["seconds_to_target"], linestyle=":", color=left.lines[-1].get_color())
    left.axhline(target, color="grey", linewidth=0.8)
    left.set(xlabel="training wall-clock seconds", ylabel="recognisability", ylim=(0, 1))
    right.set(xlabel="training wall-clock seconds", ylabel="FD (classifier features, lower is better)",
              yscale="log")
    left.legend()
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    with atomic.atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110)


def has_bf16() -> bool:
    from runegen.training.config import resolve_precision

    return resolve_precision("auto") == "bf16"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=at_least(1, int), default=3, help="timed epochs per loop for throughput")
    parser.add_argument("--target", type=at_least(0.0, float), default=0.80, help="recognisability to reach")
    parser.add_argument("--budget-factor", type=at_least(0.0, float), default=3.0,
                        help="the tutorial trains up to this times runegen's time to the target")
    parser.add_argument("--samples-per-class", type=at_least(3, int), default=400,
                        help="runes per class; 3 or more, so that the 24 classes fill one batch of 64")
    parser.add_argument("--race-precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"),
                        help="runegen's precision in the race (fp32: the same arithmetic as the tutorial's)")
    parser.add_argument("--full-runegen-curve", action="store_true",
                        help="train runegen all its default epochs, not only until it reaches the target")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-race", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--plot-from", type=Path, metavar="JSON",
                        help="only draw --plot from an earlier --json (also one a stopped run left)")
    args = parser.parse_args()
    if args.plot and importlib.util.find_spec("matplotlib") is None:  # before the race, not after it
        parser.error("--plot needs matplotlib: pip install -e '.[benchmarks]'")
    for flag, path in (("--json", args.json), ("--plot", args.plot)):  # before hours of training
        if path is not None and not path.parent.is_dir():
            parser.error(f"{flag} {path}: no folder {path.parent}")
    if args.plot_from:
        if not args.plot:
            parser.error("--plot-from draws --plot: give both")
        try:
            record = json.loads(args.plot_from.read_text())
            races = {label: record["race"][name] for label, name in
                     (("runegen default", "runegen"), ("TF tutorial loop", "tutorial")) if name in record["race"]}
            target = record["target_recognisability"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            parser.error(f"--plot-from {args.plot_from}: not a train_speed --json with a race ({error!r})")
        plot(races, target, args.plot, title(record))
        return

    from runegen.core.quiet import import_tensorflow

    tf = import_tensorflow()

    from runegen.data import load_dataset
    from runegen.quality.scorer import Scorer
    from runegen.training.config import TrainConfig

    dataset = load_dataset("runes", args.samples_per_class, seed=0)
    record = {"cpu": cpu_name(), "cpu_isa": cpu_isa(), "cores": os.cpu_count(), "tensorflow": tf.__version__,
              "images": len(dataset), "target_recognisability": args.target}
    say(f"{record['cpu']} ({record['cpu_isa']}), {record['cores']} cores, TensorFlow {tf.__version__}, {len(dataset)} rune images")
    with tempfile.TemporaryDirectory() as scratch:
        if not args.skip_throughput:
            loops = {"tutorial": TutorialLoop(dataset.images),
                     "runegen_fp32": RunegenLoop(dataset, Path(scratch) / "fp32", precision="fp32")}
            if has_bf16():
                loops["runegen_bf16"] = RunegenLoop(dataset, Path(scratch) / "bf16", precision="bf16")
            else:
                say("  (no bf16 row: no native bf16 here, in the CPU or in oneDNN's kernels (ONEDNN_MAX_CPU_ISA), where "
                    "runegen's bf16 would be emulated or abort)")
            say(f"throughput, interleaved epochs (tutorial batch {TUTORIAL_BATCH}, runegen batch "
                f"{loops['runegen_fp32'].batch_size}):")
            rates = throughput(loops, args.rounds)
            baseline = float(np.median(rates["tutorial"]))
            for name, values in rates.items():
                median = float(np.median(values))
                say(f"  {name:<16} median {median:8.1f} img/s  {median / baseline:5.2f}x tutorial")
            record["images_per_s"] = rates
            save(record, args.json)
        if not args.skip_race:
            scorer = Scorer.for_dataset(dataset, TrainConfig.eval_samples)
            loop = RunegenLoop(dataset, Path(scratch) / "race", precision=args.race_precision)
            record["race_precision"] = loop.run.config.precision
            say(f"time to recognisability {args.target} (training seconds, scoring excluded; "
                f"runegen --precision {args.race_precision}: {loop.run.config.precision}):")
            record["race"] = {}

            def keep(name):  # the record so far, rewritten after every scored epoch
                def save_point(result):
                    record["race"][name] = result
                    save(record, args.json)
                return save_point

            runegen = race("runegen", loop, scorer, args.target, max_epochs=loop.epochs, budget_s=None,
                           stop_at_target=not args.full_runegen_curve, on_point=keep("runegen"))
            budget = args.budget_factor * (runegen["seconds_to_target"] or runegen["trained_s"])
            record["race"]["tutorial_budget_s"] = round(budget, 1)
            tutorial = race("tutorial", TutorialLoop(dataset.images), scorer, args.target,
                            max_epochs=None, budget_s=budget, on_point=keep("tutorial"))
            mine, theirs = runegen["seconds_to_target"], tutorial["seconds_to_target"]
            if mine is None:
                say(f"runegen did not reach {args.target} in {runegen['trained_s']} s")
            elif theirs is None:
                say(f"runegen reached {args.target} in {mine} s; the tutorial not within {tutorial['trained_s']} s "
                    f"(> {tutorial['trained_s'] / mine:.1f}x)")
            elif theirs >= mine:
                say(f"runegen reached {args.target} in {mine} s, the tutorial in {theirs} s: {theirs / mine:.1f}x sooner")
            else:
                say(f"runegen reached {args.target} in {mine} s, the tutorial in {theirs} s: the tutorial "
                    f"{mine / theirs:.1f}x sooner")
            if args.plot:
                plot({"runegen default": runegen, "TF tutorial loop": tutorial}, args.target, args.plot, title(record))
    save(record, args.json)


def save(record: dict, path: Path | None) -> None:
    """The record so far, atomically: a run stopped mid-write leaves the previous one (--plot-from
    reads what a stopped run left)."""
    from runegen.core import atomic

    if path is not None:
        atomic.write_text(path, json.dumps(record, indent=2) + "\n")


def at_least(lowest, kind):
    """An argparse type: a `kind` number >= lowest (> lowest for floats), else argparse's one line."""
    def parse(text: str):
        value = kind(text)
        if not (value >= lowest if kind is int else lowest < value < float("inf")):
            raise argparse.ArgumentTypeError(f"{text}: expected a number {'>=' if kind is int else '>'} {lowest}")
        return value
    return parse


if __name__ == "__main__":
    main()
