"""The `runegen` command line: a thin typer layer over the pipeline modules.

Commands live in runegen.commands (train.py: the training side; data.py: data preview; deploy.py:
export, bench, generate; quality.py: evaluate, classifier). Heavy libraries (TensorFlow above all)
are imported inside the commands that need them, so the edge commands start fast and work on a
base install without TensorFlow.
Bad input is one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import sys

import typer
from typer.exceptions import TyperException  # typer >= 0.29 vendors click: its errors derive from this

from runegen.commands import data, deploy, quality, train
from runegen.core.errors import RunegenError

app = typer.Typer(help="Train a small DCGAN to draw 28x28 runes and ship the generator to the edge.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
data_app = typer.Typer(help="Look at the training data.", no_args_is_help=True)

app.command("train")(train.train)
app.add_typer(data_app, name="data")
data_app.command("preview")(data.data_preview)
app.command("export")(deploy.export_command)
app.command("generate")(deploy.generate)
app.command("bench")(deploy.bench_command)
app.command("evaluate")(quality.evaluate_command)
app.command("classifier")(quality.classifier_command)


def main() -> None:
    """Console entry point: runegen's errors (runegen/core/errors.py) become one line on stderr and
    exit code 2."""
    try:
        code = app(standalone_mode=False)
    except typer.Abort:  # Ctrl-C outside training's own handling (which checkpoints and says so)
        print("runegen: interrupted", file=sys.stderr)
        code = 130
    except RunegenError as error:
        print(f"runegen: error: {error}", file=sys.stderr)
        code = 2
    except TyperException as error:  # click's UsageError and friends: bad flags, exit code 2
        message = error.format_message()
        if message:  # empty where the help was printed instead (a command group with no command)
            print(f"runegen: error: {message}", file=sys.stderr)
        code = getattr(error, "exit_code", 2)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
