"""Shared option checks and helpers of the CLI commands: bad input becomes a UsageError."""

from __future__ import annotations

import json
import math
import os
from contextlib import contextmanager
from enum import Enum
from pathlib import Path

import typer

from runegen.core.atomic import probe_write, written_path
from runegen.core.devices import usable_cores
from runegen.core.errors import ModelFileError, RunegenError, UsageError, reason
from runegen.core.formats import BY_SUFFIX, FORMATS, SIDECAR
from runegen.core.quiet import installed


# Generated (and real) images one score may take: 10^8 asked numpy for 292 GiB, a traceback; a
# score's bias is small long before this (README: FD against the size of the real side).
MAX_SCORED = 100_000

# The largest seed of the commands that seed numpy's legacy generator (Keras' set_random_seed does):
# 2**32 was its traceback, after the data had loaded.
MAX_SEED = 2**32 - 1


def positive(name: str):
    def check(value):
        if value is not None and not (0 < value < math.inf):  # NaN and infinity too
            raise typer.BadParameter(f"must be a finite number > 0, got {value}", param_hint=name)
        return value
    return check


def finite(name: str):
    """A weight's check beside its `min=`: typer's range takes infinity (NaN it refuses)."""
    def check(value):
        if value is not None and not math.isfinite(value):
            raise typer.BadParameter(f"must be a finite number, got {value}", param_hint=name)
        return value
    return check


def device_option(value: str | None) -> str | None:
    """--device, stripped; empty refused (generate drew on the cpu, bench said "--device : not
    available"). Its case and provider names are read by the runtime (runtime/onnx.py)."""
    if value is not None and not value.strip():
        raise typer.BadParameter("empty; give a device such as cpu", param_hint="--device")
    return value.strip() if value is not None else None


def require(package: str, message: str) -> None:
    """A UsageError with `message` where `package` is not installed (the edge install has no
    TensorFlow nor scipy): one line, before any work."""
    if not installed(package):
        raise UsageError(message)


@contextmanager
def running(model: Path):
    """A model file that loads and then fails when run (a damaged file: a bad zero point, a Reshape
    its input cannot take): one line and exit 2 with the runtime's own words and error type, not
    its traceback. Python's MemoryError stays what it is; a runtime's own out-of-memory error is
    reported the same way, its words saying so. (The bench and the exporter record such a failure
    per row.)"""
    try:
        yield
    except (RunegenError, MemoryError):
        raise
    except Exception as error:  # noqa: BLE001 - each runtime raises its own types
        raise ModelFileError(f"{model}: the model failed to run "
                             f"({type(error).__name__}: {reason(error, 300)})") from None


def note_undescribed(generator) -> None:
    """Say on stderr when a model came without runegen's metadata (a .tflite without its sidecar,
    a .keras without its run's config.json): its latents are then drawn all Gaussian."""
    if not generator.described:
        typer.echo(f"note: {FORMATS[generator.format].undescribed(generator.path)}", err=True)


def note_reference_size(flag: str, samples: int, dataset) -> None:
    """Say on stderr when the data holds fewer real images than a score's samples: the real side
    of each score then has only those (the built-in runes draw as many as asked)."""
    if not dataset.built_in and samples > len(dataset):
        typer.echo(f"note: {flag} {samples}: {dataset.asked} holds {len(dataset)} images, so the real side "
                   f"of each score has {len(dataset)} (FD rises as that falls: compare scores of equal sizes)",
                   err=True)


def given_path(name: str, kind: type = Path):
    """typer's `parser=` for a path option or argument (`name`: its flag, or MODEL): an empty or
    blank value is refused, where typer reads "" as Path("."), the current folder (`data preview
    --data ""` showed its subfolders, `export --out ""` wrote into it); the rest become `kind`
    (str for --data, which also takes 'runes' and 'mnist'). Defaults pass as they are. A
    BadParameter, as from the option's own checks: `--resume` checks config.json's values so too."""
    def parse(value):
        if isinstance(value, str) and not value.strip():
            raise typer.BadParameter(f"{value!r}: an empty path (give . for the current folder)", param_hint=name)
        return kind(value) if isinstance(value, str) else value
    return parse


def option_value(value):
    """An option's value as a config holds it: enums by their value."""
    return value.value if isinstance(value, Enum) else value


def is_default(ctx: typer.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is None or source.name == "DEFAULT"


def check_writable(folder: Path, flag: str = "--out") -> None:
    """Make the output folder (and its parents) and check that a file can be written in it."""
    if folder.exists() and not folder.is_dir():  # mkdir's own word for it was "File exists"
        raise UsageError(f"{flag} {folder}: is a file; give a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe_write(folder)
    except OSError as error:
        raise UsageError(f"{flag} {folder}: not writable ({reason(error)})") from None


def check_output_file(path: Path, flag: str, suffix: str | None = None, *, makes_folders: bool = False) -> None:
    """Refuse, before any work, an output file that could not be written: a wrong suffix, a folder
    by that name, a parent that is missing (unless the command `makes_folders`), not a folder or
    not writable."""
    if path.is_dir():
        raise UsageError(f"{flag} {path}: is a folder; give a file name")
    if suffix and path.name.lower() == suffix:  # ".png" alone: a hidden file's name with no suffix
        raise UsageError(f"{flag} {path}: needs a file name before the {suffix} suffix")
    if suffix and path.suffix.lower() != suffix:
        raise UsageError(f"{flag} {path}: must end in {suffix}")
    real = path
    if path.is_symlink():  # the write goes through it (runegen/core/atomic.py): check its file
        try:
            real = written_path(path)
        except OSError as error:
            raise UsageError(f"{flag} {path}: cannot write ({reason(error)})") from None
        if suffix and real.suffix.lower() != suffix:  # a .png name on a model file: never replace that
            raise UsageError(f"{flag} {path}: a link to {real}, not a {suffix} file")
        makes_folders = False  # the command makes the link's folders, which exist, not its file's
    if real.is_socket() or real.is_block_device():  # a rename would replace it with a plain file
        raise UsageError(f"{flag} {path}: {'a socket' if real.is_socket() else 'a block device'}, not a file")
    folder = real.parent
    while makes_folders and not folder.exists() and folder != folder.parent:
        folder = folder.parent  # the folder the command's mkdir will start from
    if not folder.is_dir():
        what = "not a folder" if folder.exists() else "no folder"
        raise UsageError(f"{flag} {path}: cannot write ({what} {folder})")
    try:
        probe_write(folder)
    except OSError as error:
        raise UsageError(f"{flag} {path}: cannot write ({reason(error)})") from None


def check_outside_the_data(path: Path | None, flag: str, data: str) -> None:
    """Refuse an output that is `--data` (an MNIST .npz) or lies inside its folder: `evaluate --json
    mnist.npz` replaced the data with JSON, `data preview --out lab/0/1.png` a training image with a
    grid that was then trained on."""
    if path is None or data in ("runes", "mnist"):
        return
    source, target = Path(os.path.realpath(Path(data).expanduser())), Path(os.path.realpath(path))
    if target == source or source in target.parents:
        raise UsageError(f"{flag} {path}: {'is' if target == source else 'inside'} --data {data}; write it elsewhere")


def check_report_files(targets: dict[str, Path | None]) -> None:
    """check_output_file for each report (flag: path, None where not asked for); refused too: a
    path that names a model or metadata file (`bench m --json m/generator_f32.onnx` replaced the
    model it had just benched) and one path given to two flags (only the second's text was left)."""
    from runegen.core.latents import CODE_WEIGHTS_FILE  # numpy: not at the CLI's import

    metadata = ("config.json", "classes.json", CODE_WEIGHTS_FILE)
    sidecar_endings = tuple(SIDECAR.format(name=suffix) for suffix, fmt in BY_SUFFIX.items() if fmt.sidecar_metadata)
    given: dict[Path, str] = {}
    for flag, path in targets.items():
        if path is None:
            continue
        check_output_file(path, flag)
        for named in (path, written_path(path)) if path.is_symlink() else (path,):  # a link's file too
            name = named.name.lower()
            if named.suffix.lower() in BY_SUFFIX or name in metadata or name.endswith(sidecar_endings):
                raise UsageError(f"{flag} {path}: {'the name' if named is path else f'a link to {named}, the name'} "
                                 "of a model or of its metadata; give the report its own file")
        same = given.setdefault(path.resolve(), flag)
        if same != flag:
            raise UsageError(f"{flag} {path}: also given to {same}; give each report its own file")


def table_console():
    """A console for result tables: in a terminal its width; into a file or pipe wide enough for
    the whole table (rich tables take their natural width, so none is padded out to it). No markup:
    file names like "a[bold].onnx" or "b[/red]" are printed as they are (the second was a
    MarkupError). Its status line takes a rich Text for the same reason (`plain`)."""
    from rich.console import Console

    console = Console(markup=False)
    return console if console.is_terminal else Console(width=max(console.width, 1000), markup=False)


def plain(text: str):
    """`text` as rich Text, never read as markup (a status line's spinner reads strings so)."""
    from rich.text import Text

    return Text(text)


def split_list(values: list[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def integers(text: str, flag: str, all_value: int | None = None, most: int | None = None) -> list[int]:
    try:
        values = [all_value if part == "all" and all_value else int(part) for part in split_list([text])]
    except ValueError:
        raise UsageError(f"{flag} {text}: expected comma-separated whole numbers") from None
    if not values or min(values) < 1 or (most is not None and max(values) > most):
        raise UsageError(f"{flag} {text}: expected numbers >= 1{f' and <= {most}' if most else ''}")
    return list(dict.fromkeys(values))


def note_threads(flag: str, counts: list[int]) -> None:
    """Say on stderr when more threads are asked for than this process has cores to run on."""
    cores = usable_cores()
    if counts and max(counts) > cores:
        typer.echo(f"note: {flag} {max(counts)}: more threads than the {cores} core{'s' if cores != 1 else ''} "
                   "this process may run on, which they share (slower, not faster)", err=True)


def read_json(path: Path, flag: str) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise UsageError(f"{flag} {path}: not a readable bench JSON ({reason(error)})") from None


@contextmanager
def flag(name: str, *errors: type[RunegenError]):
    """The library's errors about a value the user gave with `name`, as one usage line that names
    the flag: `with flag("--data", DataError): load_dataset(spec)` -> "--data x: no images found"."""
    try:
        yield
    except errors as error:
        raise UsageError(f"{name} {error}") from None
