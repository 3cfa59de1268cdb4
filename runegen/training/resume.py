"""What a run needs to stop and start again: the stop signals (Ctrl-C, SIGTERM, SIGHUP), and the record of
the data it began with, which a resumed run must see again."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from runegen.core import atomic
from runegen.core.errors import RunStateError
from runegen.core.signals import STOP_SIGNALS
from runegen.data import GlyphDataset

DATA_RECORD = "checkpoints/data.json"  # the size and classes of the data the run began with


def save_data_record(out: Path, dataset: GlyphDataset) -> None:
    """What a resumed run must train on again: the data's size and classes (the shuffle, the steps
    per epoch and the learning-rate schedule depend on them)."""
    (out / DATA_RECORD).parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(out / DATA_RECORD, json.dumps(_described(dataset)) + "\n")


def check_same_data(out: Path, dataset: GlyphDataset) -> None:
    """Refuse data other than the run began with (a conditional run's class embedding would not
    even restore). Runs begun before 2026-12-03 have no record: their classes.json is compared."""
    began = {}
    for name, key in ((DATA_RECORD, None), ("classes.json", "classes")):
        try:
            began = json.loads((out / name).read_text())
        except (OSError, ValueError):
            continue
        began = {key: began} if key else began
        break
    now = _described(dataset)
    changed = [key for key in now if isinstance(began, dict) and key in began and began[key] != now[key]]
    if changed == ["classes"] and len(began["classes"]) == len(now["classes"]) == 1:
        changed = []  # one class, named after its folder (a flat image folder): moved or renamed, the same data
    if changed:
        def told(record: dict, key: str) -> str:  # classes by their names where their number is the same
            if key != "classes":
                return f"{record[key]} {key}"
            same = len(began[key]) == len(now[key])
            return f"classes {', '.join(map(str, record[key]))}" if same else f"{len(record[key])} classes"
        then = ", ".join(told(began, k) for k in changed)
        later = ", ".join(told(now, k) for k in changed)
        raise RunStateError(f"the data changed since the run began ({then} then, {later} now; "
                            "a resumed run must see the same data)")


def _described(dataset: GlyphDataset) -> dict:
    return {"images": len(dataset), "classes": list(dataset.class_names)}


class TrainingStopped(KeyboardInterrupt):
    """Ctrl-C, SIGTERM (kill, docker stop, Slurm, Kubernetes) or SIGHUP (a closed terminal) stopped
    the run: after a step, with a checkpoint saved, or at once on a second signal; `exit_code` is
    the shell's for that signal (130, 143, 129)."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


class StopRequest:
    """The first stop signal (Ctrl-C, SIGTERM, SIGHUP) asks the loop to checkpoint and stop after
    the current step; a second one interrupts at once. `requested` says which ("interrupted",
    "terminated", "hung up")."""

    SIGNALS = STOP_SIGNALS

    def __init__(self):
        self.requested, self.exit_code, self._previous = "", 0, {}

    def __enter__(self):
        for number in self.SIGNALS:
            if signal.getsignal(number) is signal.SIG_IGN:  # nohup's SIGHUP, a background job's Ctrl-C:
                continue  # left ignored, as runegen.cli leaves them (a closed terminal stopped a nohup run)
            try:
                self._previous[number] = signal.signal(number, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                break
        return self

    def _handle(self, number, _frame):
        if self.requested:
            raise TrainingStopped(f"{self.SIGNALS[number]} again, before the step's checkpoint", 128 + number)
        self.requested, self.exit_code = self.SIGNALS[number], 128 + number

    def __exit__(self, *_):
        for number, previous in self._previous.items():
            signal.signal(number, previous)
