"""Shared option checks and helpers of the CLI commands: bad input becomes a UsageError."""

from __future__ import annotations

import json
import tempfile
from contextlib import contextmanager
from pathlib import Path

import typer

from runegen.core.errors import RunegenError, UsageError


def positive(name: str):
    def check(value):
        if value is not None and value <= 0:
            raise typer.BadParameter(f"must be > 0, got {value}", param_hint=name)
        return value
    return check


def require(package: str, message: str) -> None:
    """A UsageError with `message` where `package` is not installed (the edge install has no
    TensorFlow nor scipy): one line, before any work."""
    import importlib.util

    try:
        found = importlib.util.find_spec(package) is not None
    except ImportError:  # an import hook that refuses it
        found = False
    if not found:
        raise UsageError(message)


def is_default(ctx: typer.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is None or source.name == "DEFAULT"


def check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise UsageError(f"--out {folder}: not writable ({error.strerror or error})") from None


def table_console():
    """A console for result tables: in a terminal its width; into a file or pipe wide enough for
    the whole table (rich tables take their natural width, so none is padded out to it)."""
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=max(console.width, 1000))


def split_list(values: list[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def integers(text: str, flag: str, all_value: int | None = None) -> list[int]:
    try:
        values = [all_value if part == "all" and all_value else int(part) for part in split_list([text])]
    except ValueError:
        raise UsageError(f"{flag} {text}: expected comma-separated whole numbers") from None
    if not values or min(values) < 1:
        raise UsageError(f"{flag} {text}: expected numbers >= 1")
    return list(dict.fromkeys(values))


def read_json(path: Path, flag: str) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise UsageError(f"{flag} {path}: not a readable bench JSON ({error})") from None


@contextmanager
def flag(name: str, *errors: type[RunegenError]):
    """The library's errors about a value the user gave with `name`, as one usage line that names
    the flag: `with flag("--data", DataError): load_dataset(spec)` -> "--data x: no images found"."""
    try:
        yield
    except errors as error:
        raise UsageError(f"{name} {error}") from None
