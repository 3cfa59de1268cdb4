"""Where a training run may live: the checks on its folder (--out) before anything is written."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator, Optional

from runegen.core.atomic import utf8_name
from runegen.core.errors import UsageError


def check_run_folder_name(out: Path) -> None:
    """Names TensorFlow's checkpoints cannot keep: bytes that are not UTF-8 (a UnicodeEncodeError
    traceback, an empty folder left behind), and `[ ] * ?`, which it reads as patterns."""
    if not utf8_name(out):
        raise UsageError(f"--out {ascii(str(out))[1:-1]}: not valid UTF-8 (TensorFlow's checkpoints keep their "
                         "paths as UTF-8 text); choose another name")
    if any(char in str(out) for char in "[]*?"):
        raise UsageError(f"--out {out}: no [ ] * ? in a run folder's path (TensorFlow reads its checkpoints' "
                         "paths as patterns, and would not find them again)")


def fresh_run_folder(out: Optional[Path]) -> Path:
    """The folder of a new run: --out, which must be new or empty, else runs/train, runs/train2, ..."""
    if out is None:  # as Ultralytics does: a rerun never overwrites
        out = next(Path("runs") / f"train{n if n > 1 else ''}" for n in range(1, 10_000)
                   if not (Path("runs") / f"train{n if n > 1 else ''}").exists())
    elif out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a folder")
    elif out.exists() and any(out.iterdir()):
        raise UsageError(f"--out {out}: exists and is not empty; choose a new folder or add --resume")
    return out


def check_outside_data(data: str, out: Path) -> None:
    """A run folder directly inside its image folder: the loader reads each subfolder's images as a
    class, so the run's progress.gif became one (a --resume was refused as other data, or as too
    little of it). Deeper or hidden folders and MNIST's files are not read, and stay allowed."""
    from runegen.data.folder import is_read
    from runegen.data.mnist import looks_like_mnist

    folder = Path(data).expanduser()
    if data in ("runes", "mnist") or not folder.is_dir() or looks_like_mnist(folder):
        return
    given, linked = Path(os.path.abspath(out)), out.resolve()  # a link there, or a link to there
    if any(place.parent.resolve() == folder.resolve() and is_read(place) for place in (given, linked)):
        raise UsageError(f"--out {out}: a folder of --data {data}, whose subfolders' images are read as "
                         "classes (the run's progress.gif would be one); choose a folder outside it")


@contextlib.contextmanager
def run_folder_lock(out: Path) -> Iterator[None]:
    """This process alone trains in `out` while it holds the folder's lock (flock, released when the
    process ends however it ends). Two runs in one folder both exited 0 with their files mixed (one's
    config, the other's generator), and a --resume beside a running training trained it twice at once."""
    try:
        import fcntl
    except ImportError:  # Windows: no flock, and no such guard
        yield
        return
    folder = os.open(out, os.O_RDONLY)
    try:
        try:
            fcntl.flock(folder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f"--out {out}: another runegen train is training in it; wait for it to end, "
                             "or choose another --out") from None
        yield
    finally:
        os.close(folder)  # and the lock with it
