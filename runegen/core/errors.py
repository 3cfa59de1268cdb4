"""runegen's errors, and the one place an underlying error becomes a short reason.

The library raises typed errors whose message says what is wrong with a file, a folder, a value
or a device, without naming a command-line flag (a library caller has no flags); the commands
add the flag the value came from where they know it (`--data ...: no images found`), and the
CLI (runegen/cli.py) turns every `RunegenError` into one line on stderr and exit code 2.
"""

from __future__ import annotations

import os
import re


class RunegenError(Exception):
    """Input the user can fix: the message says what, in one line."""


class UsageError(RunegenError):
    """A bad command-line value or combination (raised by the commands, which name the flag)."""


class DataError(RunegenError):
    """A dataset that cannot be found or read; the message starts with what was asked for."""


class ModelFileError(RunegenError):
    """A model or metadata file that is missing, unreadable, or not what it should be."""


class DeviceError(RunegenError):
    """A device or runtime that is not available here."""


class RunStateError(RunegenError):
    """A run folder that cannot be resumed, or a setting the run cannot use."""


class ReplicaSettingError(RunStateError):
    """A setting the run's devices cannot run together (DiffAugment on several, a batch that
    leaves a replica an odd share for mode seeking's pairs)."""


def reason(error: BaseException, limit: int = 160) -> str:
    """An underlying library's exception as a short reason: an OSError's own words and the last
    part of its path ("Is a directory: generator_f32.tflite.json"), else its first line without
    onnxruntime's code prefix; cut to `limit` characters."""
    if isinstance(error, OSError) and error.strerror:  # not "[Errno 21] Is a directory: '/the/whole/path'"
        text = error.strerror + (f": {os.path.basename(os.fsdecode(error.filename))}" if error.filename else "")
    else:
        text = str(error).strip()
    text = text.splitlines()[0] if text else type(error).__name__
    text = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", text)
    text = re.sub(r"^Load model from .* failed:\s*", "", text)
    return text if len(text) <= limit else text[:limit - 3] + "..."
