"""TensorFlow's start-up noise is hidden (runegen/core/quiet.py): replayed when the import fails,
since it may say why; not when the user presses Ctrl-C during it."""

import os

import pytest

from runegen.core.quiet import quiet_native_stderr


def native_noise(text: str) -> None:
    os.write(2, text.encode())  # as a C++ library writes: to file descriptor 2, past sys.stderr


def test_noise_hidden_replayed_on_failure_and_not_on_ctrl_c(capfd, monkeypatch):
    monkeypatch.delenv("RUNEGEN_VERBOSE_TF", raising=False)
    with quiet_native_stderr():
        native_noise("oneDNN custom operations are on\n")
    with pytest.raises(ImportError), quiet_native_stderr():
        native_noise("libcudart.so: cannot open shared object file\n")
        raise ImportError("_pywrap_tensorflow_internal")
    with pytest.raises(KeyboardInterrupt), quiet_native_stderr():
        native_noise("Could not find cuda drivers\n")
        raise KeyboardInterrupt
    assert capfd.readouterr().err == "libcudart.so: cannot open shared object file\n"
