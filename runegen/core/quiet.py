"""Whether an optional package is installed (or imports), and TensorFlow's import without the C++ log lines it
prints while it loads (oneDNN, CUDA probing).

They are written before absl logging is initialised, so TF_CPP_MIN_LOG_LEVEL cannot stop them;
the only way is to point file descriptor 2 elsewhere for the duration of the import. If the import
fails, what it printed is replayed so nothing useful is lost.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from typing import Iterator

from runegen.core.signals import stop_if_heard


def installed(package: str) -> bool:
    """Whether `package` can be imported, without importing it (the edge install has neither
    TensorFlow nor scipy; an import hook that refuses a package counts as its absence)."""
    import importlib.util

    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        return False


def imports(package: str) -> bool:
    """Whether `package` imports here: installed() and more, for a runtime about to be used (an
    onnxruntime wheel whose native library does not load is installed, but of no use)."""
    try:
        import_quietly(package)
        return True
    except ImportError:
        return False


def import_onnxruntime():
    """onnxruntime (import_quietly): with no writable home (a systemd service's DynamicUser) 1.32
    printed a coloured "Failed to persist telemetry device ID" line as it loaded, on every run."""
    return import_quietly("onnxruntime")


def import_quietly(package: str):
    """`package`, its native start-up output dropped (shown where the import fails). ImportError
    without it; Stopped where a stop signal came as it loaded (a native module's init turns that
    into ImportError, which was read as the package's absence)."""
    import importlib

    try:
        with quiet_native_stderr():
            return importlib.import_module(package)
    except ImportError:
        stop_if_heard()
        raise


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    if os.environ.get("RUNEGEN_VERBOSE_TF"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except Exception:  # a failed import: what it printed may say why (not so for Ctrl-C)
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def import_tensorflow(start_runtime: bool = True):
    """Import TensorFlow and Keras without their start-up noise; returns the tf module.
    start_runtime=False leaves the runtime unstarted (a cluster's strategy must start it)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        with quiet_native_stderr():
            import keras  # noqa: F401
            import tensorflow as tf

            if start_runtime:
                tf.constant(0.0).numpy()  # first device use: the CUDA probe prints here on CPU-only hosts
    except ImportError:
        stop_if_heard()  # a stop signal while it loaded, not its absence (as in import_quietly)
        raise
    return tf
