"""Atomic file writes: write to a temporary file beside the target, then rename over it.

A crash, Ctrl-C, SIGTERM or SIGHUP mid-write leaves either the old file or the new one, never a
partial file. Through runegen's CLI (runegen.cli turns those signals into an exception) the
temporary file is removed too; SIGKILL, a power cut, a native crash, or a signal in a program
that calls these functions itself can leave it (`.name-xxxx.suffix`, hidden) behind.
A target that is a symbolic link is written through, as cp and a shell's `>` do: the file it
points to is replaced and the link stays a link. A FIFO or a character device (a terminal,
/dev/null) is written into, as `>` does, not replaced.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path
from typing import Iterator

TEMPORARY_STEM_BYTES = 64
_UMASK = os.umask(0o022)  # read the process umask (there is no getter) and put it back
os.umask(_UMASK)


def written_path(target: str | os.PathLike) -> Path:
    """The file a write to `target` replaces: through symbolic links, a dangling one's target too
    (os.replace onto the link itself would swap the link for a file). OSError for a loop of links."""
    real = Path(os.path.realpath(target))
    if real.is_symlink():  # realpath stops at a loop and hands back a link
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), str(target))
    return real


def utf8_name(path: str | os.PathLike) -> bool:
    """Whether `path` is valid UTF-8 text: a name the file system holds as other bytes reaches
    Python as surrogates, which TensorFlow, onnxruntime and LiteRT cannot take as a path."""
    try:
        os.fsdecode(path).encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def probe_write(folder: str | os.PathLike) -> None:
    """Write (and drop) a temporary file in `folder`: an OSError, without the probe's random name
    (which meant nothing to a user), where nothing can be written there."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise OSError(error.errno, error.strerror) from None


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside the file `target` names (through links; same suffix); rename
    it onto that file on success."""
    suffix = Path(target).suffix  # the name given: writers that go by the suffix (Keras) write that format
    target = written_path(target)
    if target.is_fifo() or target.is_char_device():  # written into, as a shell's > does: a rename
        yield target  # replaced the FIFO (or /dev/null, a terminal) with a plain file
        return
    # The stem cut short, so that a target named near the 255-byte limit still has a temporary name.
    stem = os.fsencode(target.stem)[:TEMPORARY_STEM_BYTES].decode(errors="ignore")
    fd, tmp = tempfile.mkstemp(prefix=f".{stem}-", suffix=suffix, dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        _take_permissions(tmp_path, target)
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def _take_permissions(tmp: Path, target: Path) -> None:
    """The replaced file's mode and group (a private 0600 file became world-readable), else the
    usual 0666 less the umask (mkstemp makes 0600 files)."""
    try:
        replaced = target.stat()
    except OSError:
        tmp.chmod(0o666 & ~_UMASK)
        return
    try:
        os.chown(tmp, -1, replaced.st_gid)  # where the user may (a group they are in)
    except OSError:
        pass
    tmp.chmod(replaced.st_mode & 0o7777)


def write_bytes(target: str | os.PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        try:
            tmp.write_bytes(data)
        except OSError as error:  # named by the target, not the temporary file (a full disk named neither)
            raise OSError(error.errno, error.strerror, os.fspath(target)) from None


def write_text(target: str | os.PathLike, text: str) -> None:
    write_bytes(target, text.encode("utf-8"))
