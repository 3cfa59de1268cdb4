"""Shared test helpers: the real CLI in a subprocess, as a user runs it, or through its entry point in
the test process where a new process would only import TensorFlow again."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

# Two xdist workers share the machine's cores (two in CI), and many tests start a TensorFlow of their
# own besides (the trainings in processes, the bench's Keras rows): each TensorFlow in the suite takes
# one thread per pool unless the caller set otherwise. With its defaults (a thread per core in each
# pool) the suite spent 9% more CPU and took 7% longer on a 2-core AMD EPYC Zen 3 (docs/test_suite.md).
# The bench sets its rows' threads itself; no test checks how TensorFlow divides an op among threads.
for _pool in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
    os.environ.setdefault(_pool, "1")


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "runegen", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def run_cli_in_process(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The CLI's console entry point (its error boundary included) in this process, which has
    TensorFlow loaded already, where a new process would only import it again (3.2 s of CPU on a
    2-core AMD EPYC Zen 3) or start an interpreter to refuse bad input (0.3-0.5 s): export, evaluate,
    classifier, generate from a .keras file, bad-input batches, and the trainings whose results are
    held to bounds (the conditional and coded runs, the one-device reference of the tf.distribute
    tests). A training compared bit for bit with another keeps its own process, as users run it: op
    determinism and the seeds are process-wide (the tiny run, the same-seed and resume tests, the
    tf.distribute runs). test_cli.py checks the boundary in real processes."""
    from contextlib import redirect_stderr, redirect_stdout
    from io import StringIO

    from runegen.cli import main

    stdout, stderr, argv = StringIO(), StringIO(), ["runegen", *map(str, args)]
    # A command may set variables for a library it starts (the .keras loader's TensorFlow threads):
    # kept out of the processes this one starts later.
    sys.argv, saved_argv, saved_cwd, saved_environ = argv, sys.argv, os.getcwd(), dict(os.environ)
    try:
        if cwd is not None:
            os.chdir(cwd)
        with redirect_stdout(stdout), redirect_stderr(stderr):
            main()
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
    finally:
        sys.argv = saved_argv
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_environ)
    return subprocess.CompletedProcess(argv, code, stdout.getvalue(), stderr.getvalue())


EDGE_BLOCKED = ("tensorflow", "keras", "tf2onnx", "tf_keras")  # what the edge install lacks
WITHOUT_TENSORFLOW = """
import sys

class BlockTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"blocked for this test: {name}")
        return None

sys.meta_path.insert(0, BlockTensorFlow())
""".replace("BLOCKED", repr(EDGE_BLOCKED))
BLOCK_TENSORFLOW = WITHOUT_TENSORFLOW + """
sys.argv[0] = "runegen"
from runegen.cli import main
main()
"""


def run_cli_without_tensorflow(*args, cwd, also_blocked: tuple[str, ...] = ()):
    """The CLI as on an edge install: TensorFlow, Keras and tf2onnx cannot be imported (nor the
    packages named in `also_blocked`: scipy, say, which the edge install lacks too)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    script = BLOCK_TENSORFLOW.replace(repr(EDGE_BLOCKED), repr(EDGE_BLOCKED + also_blocked))
    return subprocess.run([sys.executable, "-c", script, *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def bar_glyph(kind: str, shift: int = 0) -> np.ndarray:
    """A uint8 28x28 glyph for small image-folder datasets: a white bar "across", "down" or both
    ("cross") on black, `shift` (0-12) pixels along. (The loader refuses images of one flat colour.)"""
    glyph = np.zeros((28, 28), np.uint8)
    if kind in ("across", "cross"):
        glyph[6 + shift:9 + shift, 4:24] = 255
    if kind in ("down", "cross"):
        glyph[4:24, 6 + shift:9 + shift] = 255
    return glyph


def generator_weights(path):
    """The weights of a saved .keras model (TensorFlow)."""
    import keras

    return keras.saving.load_model(path, safe_mode=True).get_weights()


def assert_same_weights(a, b):
    assert len(a) == len(b)
    for left, right in zip(a, b):
        np.testing.assert_array_equal(left, right)


def assert_usage_error(result: subprocess.CompletedProcess, fragment: str) -> None:
    """Bad input: exit 2, one line on stderr that says what is wrong, no traceback."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert fragment in lines[0], lines[0]


def cut_back(run: Path, to: Path, checkpoint: str) -> Path:
    """A copy of a finished run at `to` as it stood at an earlier checkpoint ("ckpt-6"): later
    checkpoints and the final generator removed, so `--resume` continues from there."""
    shutil.copytree(run, to)
    (to / "generator.keras").unlink()
    for later in (to / "checkpoints").glob("ckpt-*.*"):
        if later.name.split(".")[0] != checkpoint:
            later.unlink()
    (to / "checkpoints" / "checkpoint").write_text(f'model_checkpoint_path: "{checkpoint}"\n'
                                                   f'all_model_checkpoint_paths: "{checkpoint}"\n')
    return to


@pytest.fixture(autouse=True)
def stop_signals_heard():
    """Ctrl-C and SIGTERM with their default actions in the test process, as from a terminal,
    whatever started pytest (a shell's background job ignores Ctrl-C, and training leaves an ignored
    signal ignored): the in-process tests that press Ctrl-C must be heard."""
    import signal

    defaults = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}
    ignored = {number: signal.signal(number, default) for number, default in defaults.items()
               if signal.getsignal(number) is signal.SIG_IGN}
    yield
    for number, handler in ignored.items():
        signal.signal(number, handler)


@pytest.fixture
def cli():
    return run_cli


@contextmanager
def built_once(tmp_path_factory, name: str):
    """A folder shared by every pytest-xdist worker of this session, and whether it still has to
    be built: the first worker to ask builds it while the others wait on a lock, then they all
    reuse it (a session fixture is otherwise built once per worker)."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # the session's folder, where the workers' sit side by side
        shared = shared.parent
    folder, done = shared / name, shared / f"{name}.done"
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists():
            yield folder, False
        else:
            shutil.rmtree(folder, ignore_errors=True)  # a build that failed earlier
            yield folder, True
            done.touch()


# The one tiny training run of the suite's shared fixtures: 96 runes, 3 steps an epoch, two epochs
# with a checkpoint after each and the quality evaluation at the end (of 200 samples, not 1,000:
# 6 s less of this run and of its resumption on a 2-core AMD EPYC Zen 3), and 6 latent codes, not the
# default 60: an epoch's sample grid draws 4 glyphs a code, 24 instead of 240 (0.65 s less at each
# epoch's end on the Zen 3; an in-process resumption took 3.8 s instead of 4.8 s; test_codes.py trains
# the 60). test_train.py checks what it leaves behind and resumes it; export, bench and evaluate use
# its generator.
TINY_SETTINGS = ("--batch-size", "32", "--samples-per-class", "4", "--codes", "6")
TINY_RUN = ("train", "--epochs", "2", "--checkpoint-every", "1", *TINY_SETTINGS, "--seed", "1", "--eval-every", "2",
            "--eval-samples", "200")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """(run folder, its CLI's stderr), built once for every xdist worker."""
    with built_once(tmp_path_factory, "tiny") as (out, build):
        if build:
            result = run_cli(*TINY_RUN, "--out", out)
            assert result.returncode == 0, result.stderr
            (out.parent / "tiny.stderr").write_text(result.stderr)
    return out, (out.parent / "tiny.stderr").read_text()


@pytest.fixture(scope="session")
def trained_generator(tiny_run):
    """A generator trained for a few steps through the real CLI (tiny_run's)."""
    return tiny_run[0] / "generator.keras"


@pytest.fixture(scope="session")
def exported(trained_generator, tmp_path_factory):
    """Every export variant of trained_generator, and the export command's output (of the worker
    that ran it)."""
    with built_once(tmp_path_factory, "export") as (out, build):
        if build:
            result = run_cli_in_process("export", trained_generator, "--format", "all", "--out", out)
            assert result.returncode == 0, result.stdout + result.stderr
            (out.parent / "export.stdout").write_text(result.stdout)
    return out, (out.parent / "export.stdout").read_text()


# Modules by how long they take, longest first (a 2-core AMD EPYC, Zen 3). pytest-xdist
# (--dist loadscope --no-loadscope-reorder, in pyproject.toml) hands whole modules to the two
# workers in collection order, so the long ones start first and the short ones fill in at the end.
# Without --no-loadscope-reorder, xdist orders modules by their number of tests instead, and one
# worker ran the bench alone for the last minute. The bench comes early: its fixture builds the
# tiny run and the exports that export, train and quality then share.
LONGEST_FIRST = ("bench/test_bench.py", "training/test_distribute.py", "training/test_resume_in_process.py",
                 "training/test_train_in_process.py", "quality/test_quality.py", "training/test_codes.py",
                 "training/test_gan.py", "training/test_train.py", "export/test_export.py", "quality/test_metrics.py",
                 "runtime/test_runtime.py", "runtime/test_generate.py", "commands/test_cli.py",
                 "runtime/test_shipped.py")


def pytest_collection_modifyitems(items):
    def rank(item):
        module = item.path.relative_to(ROOT / "tests").as_posix()
        return LONGEST_FIRST.index(module) if module in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: a module's own order is kept
