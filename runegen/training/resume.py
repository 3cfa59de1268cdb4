"""What a run needs to stop and start again: the stop signals (Ctrl-C, SIGTERM, SIGHUP), the record of
the data it began with, which a resumed run must see again, and TensorFlow's note of its
checkpoints, mended where it was lost (TensorFlow is imported inside the functions that need it)."""

from __future__ import annotations

import contextlib
import json
import signal
import unicodedata
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
    changed = [key for key in now if isinstance(began, dict) and key in began and _told_apart(began[key], now[key])]
    if "classes" in changed and len(began["classes"]) == len(now["classes"]) == 1:
        changed.remove("classes")  # one class, named after its folder (a flat image folder): moved, not changed
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


def _told_apart(then, now) -> bool:
    """Whether two records' values differ. Class names are compared as Unicode text (NFC): a class
    folder copied from a Mac holds "é" as "e" and an accent, and the same names were refused as
    changed ("classes alpha, béta then, classes alpha, béta now")."""
    if isinstance(then, list) and isinstance(now, list):
        then, now = ([unicodedata.normalize("NFC", str(name)) for name in names] for names in (then, now))
    return then != now


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


# --- TensorFlow's note of a run's checkpoints (checkpoints/checkpoint) ---------------------------

def checkpoint_state(folder: Path):
    """TensorFlow's note of the checkpoints in `folder` (its file `checkpoint`); None where it is
    missing or unreadable (TensorFlow returns None for a garbled one, and raises for an empty one)."""
    import tensorflow as tf

    with tensorflow_log_quiet():
        try:
            return tf.train.get_checkpoint_state(folder)
        except ValueError:
            return None


def readable_checkpoints(folder: Path) -> list[str]:
    """The ckpt-N prefixes in `folder` whose index TensorFlow reads, oldest first: a save killed
    while it wrote the index leaves a partial one."""
    import tensorflow as tf

    numbers = sorted(int(n) for n in (p.name[len("ckpt-"):-len(".index")] for p in folder.glob("ckpt-*.index"))
                     if n.isdigit())
    readable = []
    for prefix in (str(folder / f"ckpt-{number}") for number in numbers):
        try:
            tf.train.load_checkpoint(prefix)
        except (tf.errors.OpError, ValueError):
            continue
        readable.append(prefix)
    return readable


def mend_checkpoint_state(folder: Path) -> None:
    """The note of the checkpoints written again where it is lost or unreadable and readable ones
    are there: --resume trained from the beginning over the run, or was a traceback (an empty note).
    An unreadable note with no checkpoint to name is a RunStateError; none at all, a run to begin."""
    import tensorflow as tf

    if not folder.is_dir() or checkpoint_state(folder) is not None:
        return
    readable = [Path(path).name for path in readable_checkpoints(folder)]  # relative, as TensorFlow writes them
    if readable:
        # With their times and an earlier "last preserved" one, as CheckpointManager writes them:
        # without, it keeps them all for good (max_to_keep=2 no longer held on disk).
        times = [(folder / f"{name}.index").stat().st_mtime for name in readable]
        with tensorflow_log_quiet():
            tf.compat.v1.train.update_checkpoint_state(str(folder), readable[-1], readable,
                                                       all_model_checkpoint_timestamps=times,
                                                       last_preserved_timestamp=min(times) - 1)
    elif (folder / "checkpoint").exists():
        raise RunStateError(f"no checkpoint in {folder} (its note of them, checkpoints/checkpoint, is unreadable)")


@contextlib.contextmanager
def tensorflow_log_quiet():
    """TensorFlow's own log lines (WARNING, ERROR) held back: the user gets runegen's one line."""
    import tensorflow as tf

    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("CRITICAL")
    try:
        yield
    finally:
        logger.setLevel(level)
