"""Atomic file writes: write to a temporary file beside the target, then rename over it.

A crash, Ctrl-C, SIGTERM or SIGHUP mid-write leaves either the old file or the new one, never a
partial file. Through runegen's CLI (runegen.cli turns those signals into an exception) the
temporary file is removed too; SIGKILL, a power cut, a native crash, or a signal in a program
that calls these functions itself can leave it (`.name-xxxx.suffix`, hidden) behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

_UMASK = os.umask(0o022)  # read the process umask (there is no getter) and put it back
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder (same suffix); rename it onto target on success."""
    target = Path(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}-", suffix=target.suffix, dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        tmp_path.chmod(0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_bytes(target: str | os.PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: str | os.PathLike, text: str) -> None:
    write_bytes(target, text.encode("utf-8"))
