"""The `runegen` command line: a thin typer layer over the pipeline modules.

Commands live in runegen.commands (train.py: the training side; data.py: data preview; deploy.py:
export, bench, generate; quality.py: evaluate, classifier). Heavy libraries (TensorFlow above all)
are imported inside the commands that need them, so the edge commands start fast and work on a
base install without TensorFlow.
Bad input is one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import sys
import threading

import typer
from typer.exceptions import TyperException  # typer >= 0.29 vendors click: its errors derive from this

from runegen.commands import data, deploy, quality, train
from runegen.core import signals
from runegen.core.errors import RunegenError
from runegen.core.signals import STOP_SIGNALS, Stopped

ABOUT = "Train a small DCGAN to draw 28x28 runes and ship the generator to the edge."
app = typer.Typer(help=ABOUT,
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
data_app = typer.Typer(help="Look at the training data.", no_args_is_help=True)


def _print_version(asked: bool) -> None:
    if asked:
        from runegen import __version__

        typer.echo(f"runegen {__version__}")
        raise typer.Exit()


@app.callback()
def _options(version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                          help="Print runegen's version and exit.", show_default=False)) -> None:
    pass  # the options of `runegen` itself; the help is ABOUT

app.command("train")(train.train)
app.add_typer(data_app, name="data")
data_app.command("preview")(data.data_preview)
app.command("export")(deploy.export_command)
app.command("generate")(deploy.generate)
app.command("bench")(deploy.bench_command)
app.command("evaluate")(quality.evaluate_command)
app.command("classifier")(quality.classifier_command)


_retries: list[threading.Timer] = []
RETRY_SECONDS = 0.05


def _stop(number, frame):
    signals.heard(number)
    if _in_finalizer(frame):  # Python prints and drops an exception raised in a __del__ (the TFLite
        # converter's gc.collect()): Ctrl-C was lost there. The signal is raised again a moment later,
        # from a thread (from here it would come back at once, inside the same __del__).
        retry = threading.Timer(RETRY_SECONDS, signal.raise_signal, (number,))
        retry.daemon = True
        _retries.append(retry)
        retry.start()
        return
    raise Stopped(number)


def _in_finalizer(frame) -> bool:
    while frame is not None:
        if frame.f_code.co_name == "__del__":
            return True
        frame = frame.f_back
    return False


def _catch_stop_signals() -> dict:
    """_stop for each stop signal, where signals can be set (the main thread) and the signal is not
    ignored (a shell starts a background job with Ctrl-C ignored, and nohup ignores SIGHUP); the
    handlers they replace, to put back."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {number: signal.signal(number, _stop) for number in STOP_SIGNALS
            if signal.getsignal(number) is not signal.SIG_IGN}


OS_LIMITS = {errno.ENAMETOOLONG: "file name too long", errno.ENOSPC: "no space left on device",
             errno.EDQUOT: "disk quota exceeded"}
RANGE_CHECKS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}


def _given(error: TyperException) -> str:
    """", got VALUE" for a value typer refused by an option's range, whose message names no value:
    `--r1 nan` was refused with "Input should be greater than or equal to 0" alone. Read from the
    pydantic error typer raises it from; nothing where there is none."""
    errors = getattr(error.__cause__, "errors", None)
    found = errors() if callable(errors) else []
    return f", got {found[0].get('input')}" if found and found[0].get("type") in RANGE_CHECKS else ""


def main() -> None:
    """Console entry point: runegen's errors (runegen/core/errors.py) become one line on stderr and
    exit code 2; Ctrl-C, SIGTERM and SIGHUP one line, then the signal's own end (Stopped)."""
    previous, stopped_by = _catch_stop_signals(), None
    signals.forget()
    try:
        code = app(standalone_mode=False)
        signals.stop_if_heard()  # raised where it was lost all the same (a weakref's callback): the command's
        # work is done, yet it ends as stopped, as the caller asked
    except Stopped as stopped:
        print(f"runegen: {STOP_SIGNALS[stopped.number]}", file=sys.stderr)
        code, stopped_by = 128 + stopped.number, stopped.number
    except typer.Abort:  # end of input at a prompt
        print("runegen: interrupted", file=sys.stderr)
        code = 130
    except RunegenError as error:
        print(f"runegen: error: {error}", file=sys.stderr)
        code = 2
        if "tensorflow" in sys.modules:  # its teardown's warnings after the one line (a checkpoint of
            logging.getLogger("tensorflow").setLevel(logging.ERROR)  # other shapes: its unrestored values)
    except OSError as error:
        if error.errno not in OS_LIMITS:
            raise
        # A name the user gave, or one made from it (a sidecar's), past the file system's limit; a
        # full disk as a report or picture is written (a traceback after the work): the temporary
        # file is gone, the earlier file kept.
        print(f"runegen: error: {f'{error.filename}: ' if error.filename else ''}{OS_LIMITS[error.errno]}",
              file=sys.stderr)
        code = 2
    except TyperException as error:  # click's UsageError and friends: bad flags, exit code 2
        message = error.format_message()
        if message:  # empty where the help was printed instead (a command group with no command)
            print(f"runegen: error: {message}{_given(error)}", file=sys.stderr)
        code = getattr(error, "exit_code", 2)
    finally:
        for retry in _retries:
            retry.cancel()
        for number, handler in previous.items():
            signal.signal(number, handler)
    if stopped_by is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        signal.signal(stopped_by, signal.SIG_DFL)
        os.kill(os.getpid(), stopped_by)  # ends the process here; the exit code below where it cannot
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
