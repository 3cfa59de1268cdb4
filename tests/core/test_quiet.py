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


@pytest.mark.parametrize("importer", ["import_quietly", "import_tensorflow"])
def test_an_import_failed_by_a_stop_signal_is_a_stop_not_an_absence(monkeypatch, importer):
    """A native module's init turns whatever is raised as it loads into ImportError: where a stop
    signal was heard meanwhile, both quiet imports raise Stopped, so no caller reads it as "not
    installed"; without one, the ImportError stands."""
    import contextlib
    import signal

    from runegen.core import quiet, signals

    @contextlib.contextmanager
    def failing_load():
        raise ImportError("initialization failed")
        yield

    monkeypatch.setattr(quiet, "quiet_native_stderr", failing_load)
    load = {"import_quietly": lambda: quiet.import_quietly("json"),
            "import_tensorflow": quiet.import_tensorflow}[importer]
    signals.forget()
    with pytest.raises(ImportError):
        load()
    signals.heard(signal.SIGINT)
    try:
        with pytest.raises(signals.Stopped) as stopped:
            load()
        assert stopped.value.number == signal.SIGINT
    finally:
        signals.forget()
