"""`runegen train --resume`: the run's own config, read back, checked, and changed only where a
resumed run may change it."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Optional

import typer

from runegen.commands.options import flag, is_default, option_value
from runegen.core.errors import RunStateError, UsageError
from runegen.training.config import TrainConfig, load_config

# Settings a resumed run may change; all others must stay as the run began.
RESUMABLE = ("epochs", "checkpoint_every", "eval_every", "eval_samples", "devices", "deterministic", "jit")
# What a run folder holds (runegen/training/run.py): True for a folder.
RUN_PARTS = {"samples": True, "checkpoints": True, "tensorboard": True, "metrics.csv": False,
             "generator.keras": False, "progress.gif": False, "classes.json": False}
KINDS = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}


def resumed_config(ctx: typer.Context, given: TrainConfig, out: Optional[Path]) -> tuple[TrainConfig, Path]:
    """The config of the run in `out` (default: the latest run) with what `given` may change, and
    its folder; a UsageError for a setting that cannot change or a config.json that cannot be."""
    out = out or _latest_run()
    with flag("--resume:", RunStateError):
        config = load_config(out)
    for name, folder in RUN_PARTS.items():  # a traceback where training first wrote there
        part = out / name
        if part.exists() and part.is_dir() != folder:
            raise UsageError(f"--resume: {part} is a {'file' if folder else 'folder'}; the run keeps its "
                             f"{name} {'folder' if folder else 'file'} there (move it away)")
    config = dataclasses.replace(config, **{name: getattr(given, name) for name in RESUMABLE
                                            if not is_default(ctx, name)})  # checked as given, below
    config = _checked_as_options(ctx, config, out / "config.json")
    ignored = ("codes", "continuous_codes") if config.conditional else ()  # by a conditional run (their help)
    for field in dataclasses.fields(TrainConfig):
        if field.name in RESUMABLE or field.name in ignored or is_default(ctx, field.name):
            continue
        if not _same_setting(field.name, getattr(given, field.name), getattr(config, field.name)):
            raise UsageError(f"--resume: --{field.name.replace('_', '-')} cannot change "
                             f"(the run in {out} used {getattr(config, field.name)!r})")
    if not is_default(ctx, "data"):  # the same data, perhaps named from elsewhere now
        config = dataclasses.replace(config, data=given.data)
    elif config.data not in ("runes", "mnist") and not Path(config.data).expanduser().exists():  # as load_dataset
        raise UsageError(f"--resume: the run's data {config.data} is not there: config.json names it as the "
                         "run began: if it moved, or the run began elsewhere, give --resume --data PATH")
    return config, out


def _same_setting(name: str, given, began) -> bool:
    """Whether a value given to --resume is the run's own: `--precision auto` is what the run
    resolved when it began, and data files may be named by another path (from another folder, or
    after a move; `mnist`, Keras' cache, by the path of its file: the error for a cache that is not
    there says to give it): the run checks that their size and classes are the ones it began with.
    The built-in runes are drawn, not read: no path stands for them."""
    if given == began or (name == "precision" and given == "auto"):
        return True
    return name == "data" and "runes" not in {given, began}


def _checked_as_options(ctx: typer.Context, config: TrainConfig, path: Path) -> TrainConfig:
    """A run's config.json read back, each value checked as its option checks it (type, range,
    choices): a hand-edited or damaged one was a traceback once training began."""
    fields = {field.name: field for field in dataclasses.fields(TrainConfig)}
    checked = {}
    for param in (p for p in ctx.command.params if p.name in fields):
        value, default = getattr(config, param.name), fields[param.name].default
        if value is None and default is None:  # not resolved: --deterministic's "on without a GPU"
            continue
        kind = bool if default is None else type(default)
        try:
            if not _of_kind(value, kind):
                raise typer.BadParameter(f"expected {KINDS[kind]}")
            checked[param.name] = option_value(param.process_value(ctx, value))
        except typer.BadParameter as error:
            raise UsageError(f"--resume: {path}: {param.name} {value!r}: {error.format_message()}") from None
    return dataclasses.replace(config, **checked)


def _of_kind(value, kind: type) -> bool:
    """JSON's value as the option's type: a whole number is a number, true and false are no numbers."""
    if isinstance(value, bool) or kind is bool:
        return isinstance(value, bool) and kind is bool
    return isinstance(value, (int, float) if kind is float else kind)


def _latest_run() -> Path:
    """The run of runs/ (train, train2, ...: the names runegen gives) that trained last. Not the
    folder's own time, which an export into it moves: `--resume` went on with a finished, exported
    run and left the interrupted one."""
    runs = [p for p in Path("runs").glob("train*") if re.fullmatch(r"train([2-9]|[1-9]\d+)?", p.name)
            and (p / "config.json").is_file()]
    if not runs:
        raise UsageError("--resume: no run in runs/; pass --out DIR")
    return max(runs, key=_last_trained)


def _last_trained(run: Path) -> float:
    """When training last wrote into `run`: its checkpoint state, its metrics or its config.json."""
    written = (run / "checkpoints" / "checkpoint", run / "metrics.csv", run / "config.json")
    return max(path.stat().st_mtime for path in written if path.exists())
