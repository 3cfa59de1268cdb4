"""Bad input through the real CLI: one line on stderr, exit code 2, nothing overwritten."""

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import runegen

from conftest import assert_usage_error, bar_glyph, run_cli, run_cli_in_process, run_cli_without_tensorflow


def test_help_lists_the_commands():
    result = run_cli("--help")
    assert result.returncode == 0
    assert "train" in result.stdout and "data" in result.stdout
    version = run_cli("--version")  # was "No such option: --version"
    assert version.returncode == 0 and version.stdout == f"runegen {runegen.__version__}\n", version.stderr
    for group in ((), ("data",)):  # no command: the help, and no empty "runegen: error:" line after it
        bare = run_cli(*group)
        assert bare.returncode == 2 and "Usage" in bare.stdout and bare.stderr == "", bare.stderr


def test_help_keeps_every_word_of_the_option_texts():
    """rich reads "[...]" in a help text as markup and drops it: defaults that are not values
    go through typer's show_default instead, and every help text is free of brackets."""
    import typer
    from typer.testing import CliRunner

    from runegen.cli import app

    def commands(group):
        for command in group.commands.values():
            yield from commands(command) if hasattr(command, "commands") else [command]

    for command in commands(typer.main.get_command(app)):
        for param in command.params:
            assert "[" not in (getattr(param, "help", None) or ""), (command.name, param.name)
    shown = CliRunner().invoke(app, ["export", "--help"], env={"COLUMNS": "200"}).output
    assert "beside the model, in export/" in shown
    # each option's range and default, as the others show theirs: --threads showed [x<=256], though
    # 0 and -1 are refused, and evaluate's no default; --accept-failures no default at all
    def option_line(command, option):
        shown = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "250"}).output
        return next(line for line in shown.splitlines() if f" {option} " in line)

    for command in ("generate", "evaluate"):
        assert "[1<=x<=256]" in option_line(command, "--threads") and "all cores" in option_line(command, "--threads")
    assert "[default: (off)]" in option_line("bench", "--accept-failures")


@pytest.mark.parametrize("args, fragment", [
    (["--data", "/no/such/folder"], "no such file or folder"),
    (["--epochs", "0"], "--epochs"),
    (["--batch-size", "many"], "--batch-size"),
    (["--preset", "s3"], "--preset"),
    (["--update", "sideways"], "--update"),
    (["--precision", "fp8"], "--precision"),
    (["--lr-g", "-1"], "--lr-g"),
    (["--batch-size", "100000", "--samples-per-class", "2"], "larger than the dataset"),
    # sizes no memory holds: a traceback (TensorFlow's OOM; numpy's "Unable to allocate 66.8 PiB")
    (["--latent-dim", "5000000"], "--latent-dim"),
    (["--samples-per-class", "1000000000000"], "--samples-per-class"),
    # infinite weights: 'training diverged' after TensorFlow started (exit 1), or taken unsaid
    (["--info-weight", "inf"], "--info-weight: must be a finite number, got inf"),
    (["--mode-seeking-target", "inf"], "--mode-seeking-target"),
    # a range's message named no value: NaN was "Input should be greater than or equal to 0" alone
    (["--r1", "nan"], "'--r1': Input should be greater than or equal to 0, got nan"),
    (["--ema", "2"], "'--ema': Input should be less than or equal to 0.99999, got 2"),
])
def test_bad_train_flags(tmp_path, args, fragment):
    assert_usage_error(run_cli("train", *args, "--out", tmp_path / "run"), fragment)
    assert not (tmp_path / "run").exists()


def test_image_folders_a_run_cannot_use(tmp_path):
    """Empty, unreadable, one class with --conditional, too small to score, or unseen by the
    classifier that scores unlabelled data: refused before training starts."""
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_usage_error(run_cli("train", "--data", empty, "--out", tmp_path / "a"), "no images found")
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "glyph.png").write_bytes(b"\x89PNG truncated")
    assert_usage_error(run_cli("train", "--data", corrupt, "--out", tmp_path / "b"), "could be read")
    flat = tmp_path / "flat"  # one class: nothing to condition on
    flat.mkdir()
    for i in range(2):
        Image.fromarray(bar_glyph("down", i)).save(flat / f"{i}.png")
    assert_usage_error(run_cli("train", "--data", flat, "--conditional", "--out", tmp_path / "c"),
                       "--conditional: --data")
    # two images: too few for the k-NN metrics, said before training rather than at its first evaluation
    assert_usage_error(run_cli("train", "--data", flat, "--batch-size", "2", "--out", tmp_path / "c"),
                       "too few to score")
    noise = tmp_path / "noise"  # glyphs the rune classifier, which scores unlabelled data, sees nothing in
    noise.mkdir()
    for i in range(12):
        Image.effect_noise((28, 28), 100 + 10 * i).save(noise / f"{i}.png")
    assert_usage_error(run_cli("train", "--data", noise, "--batch-size", "4", "--out", tmp_path / "c"),
                       "sees no glyph in 100% of these images")
    assert_usage_error(run_cli_without_tensorflow("evaluate", "--data", flat, cwd=tmp_path),
                       "2 images, too few to score")
    assert not (tmp_path / "c").exists()


def test_unwritable_out(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert_usage_error(run_cli("train", "--samples-per-class", "2", "--batch-size", "8",
                               "--out", blocker / "run"), "not writable")


def test_existing_run_is_never_overwritten(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "generator.keras").write_bytes(b"precious")
    assert_usage_error(run_cli("train", "--out", out), "not empty")
    assert (out / "generator.keras").read_bytes() == b"precious"


def test_resume_takes_the_latest_run_folder_not_a_file(tmp_path):
    """runs/train.log, newer than any run, was taken as the latest run: a NotADirectoryError."""
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "train.log").write_text("a log")
    assert_usage_error(run_cli("train", "--resume", cwd=tmp_path), "--resume: no run in runs/")


def test_resume_takes_the_run_that_trained_last(tmp_path, monkeypatch):
    """The latest run was the folder changed last: an export into a finished run (the README's next
    step) made `--resume` extend that run and overwrite its exported generator, not resume the
    interrupted one; a copy named runs/train_backup counted as a run too."""
    from runegen.commands.resume import _latest_run

    def run(name: str, trained_at: int, *written: str) -> Path:
        folder = tmp_path / "runs" / name
        for relative in ("config.json", *written):
            (folder / relative).parent.mkdir(parents=True, exist_ok=True)
            (folder / relative).write_text("{}")
            os.utime(folder / relative, (trained_at, trained_at))
        return folder

    run("train", 1_000, "metrics.csv", "checkpoints/checkpoint")
    interrupted = run("train2", 2_000, "checkpoints/checkpoint")
    run("train", 1_000, "export/generator_f32.onnx")  # exported later, its files new
    os.utime(tmp_path / "runs" / "train" / "export" / "generator_f32.onnx", (3_000, 3_000))
    run("train_backup", 4_000, "checkpoints/checkpoint")
    monkeypatch.chdir(tmp_path)
    assert _latest_run() == Path("runs") / interrupted.name
    run("train10", 5_000)  # begun last, before its first checkpoint
    assert _latest_run() == Path("runs/train10")


def test_resume_takes_the_data_by_another_name_but_never_for_the_runes():
    """A run begun on `--data mnist` (Keras' cache) could not be resumed with the path of its file,
    which the error for a missing cache asks for ("--data cannot change"); the run then checks the
    data's size and classes. The built-in runes are drawn, and no path stands for them."""
    from runegen.commands.resume import _same_setting

    assert _same_setting("data", "copy/mnist.npz", "mnist") and _same_setting("data", "mnist", "idx/")
    assert _same_setting("data", "moved/glyphs", "glyphs")
    assert not _same_setting("data", "mnist", "runes") and not _same_setting("data", "runes", "my_runes/")


def test_resume_without_a_run(tmp_path):
    assert_usage_error(run_cli("train", "--resume", "--out", tmp_path), "no run")
    assert_usage_error(run_cli("train", "--resume", cwd=tmp_path), "no run in runs/")


def test_resume_cannot_change_the_preset(tmp_path):
    (tmp_path / "config.json").write_text('{"preset": "s1"}')
    assert_usage_error(run_cli("train", "--resume", "--out", tmp_path, "--preset", "s2"),
                       "--preset cannot change")


def test_resume_refuses_a_config_it_cannot_train_and_allows_what_the_run_ignored(tmp_path):
    """Values of a hand-edited or damaged config.json were tracebacks once training began
    (TypeError, ZeroDivisionError, KeyError, 'None values not supported', this last after writing a
    TensorBoard file into the run): each is checked as its option is. A conditional run ignores
    --codes and --continuous-codes (so says their help), yet --resume refused to change them; and
    its data, named relative to where the run began, is said to be so."""
    import json

    for key, value in (("batch_size", "eight"), ("batch_size", 0), ("precision", "fp64"), ("lr_g", None),
                       ("spectral_norm", "yes"), ("seed", 2**40), ("info_weight", float("inf"))):
        (tmp_path / "config.json").write_text(json.dumps({key: value}))
        assert_usage_error(run_cli_in_process("train", "--resume", "--out", tmp_path),
                           f"--resume: {tmp_path / 'config.json'}: {key} {value!r}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]
    (tmp_path / "config.json").write_text(json.dumps({"conditional": True, "codes": 60, "seed": 0}))
    assert_usage_error(run_cli_in_process("train", "--resume", "--out", tmp_path, "--conditional", "--codes", "0",
                                          "--continuous-codes", "0", "--seed", "5"), "--seed cannot change")
    (tmp_path / "config.json").write_text(json.dumps({"data": "images/gone"}))
    assert_usage_error(run_cli_in_process("train", "--resume", "--out", tmp_path, cwd=tmp_path.parent),
                       "as the run began: if it moved, or the run began elsewhere, give --resume --data PATH")


def test_resume_checks_the_config_it_will_train(tmp_path, monkeypatch):
    """What --resume may change is checked as given, not as the run began (a run begun with
    --eval-samples 150000, valid then, could not be resumed with a smaller one); the codes'
    checks apply to the run's own settings (a hand-edited "codes": 1 trained a constant code, a
    conditional run refused --codes 1 it ignores); a data path under ~ is found as training finds
    it. Each run here is refused next for DiffAugment on two devices, before TensorFlow starts."""
    import json

    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "glyphs").mkdir()
    refused_next = ("--devices", "/cpu:0,/cpu:1")
    augmented = {"diffaugment": True, "codes": 0, "continuous_codes": 0}
    for began, given in (({"eval_samples": 150_000}, ("--eval-samples", "1000")),
                         ({"data": "~/glyphs"}, ()),
                         ({"conditional": True}, ("--codes", "1"))):
        (tmp_path / "config.json").write_text(json.dumps({**augmented, **began}))
        assert_usage_error(run_cli_in_process("train", "--resume", "--out", tmp_path, *given, *refused_next),
                           "DiffAugment runs on one device only")
    (tmp_path / "config.json").write_text(json.dumps({"codes": 1}))
    assert_usage_error(run_cli_in_process("train", "--resume", "--out", tmp_path), "--codes 1: one code is a constant")


def test_train_refuses_a_seed_numpy_cannot_take_and_a_single_code(tmp_path):
    """A seed of 2**32 or more was numpy's traceback after TensorFlow started, leaving an empty run
    folder (the classifier's, Keras' traceback after loading its data); --codes 1 trained a constant
    one-hot (code accuracy 1.000) with Keras's warning."""
    assert_usage_error(run_cli_in_process("train", "--seed", str(2**32), "--out", tmp_path / "a"), "--seed")
    assert_usage_error(run_cli_in_process("classifier", "--seed", str(2**32), "--out", tmp_path / "c.keras"),
                       "--seed")
    assert_usage_error(run_cli_in_process("train", "--codes", "1", "--out", tmp_path / "b"),
                       "--codes 1: one code is a constant")
    assert not any(tmp_path.iterdir())


def test_data_preview_writes_a_grid(tmp_path):
    out = tmp_path / "preview.png"
    result = run_cli("data", "preview", "--per-class", "3", "--out", out)
    assert result.returncode == 0, result.stderr
    with Image.open(out) as image:
        assert image.size[0] < image.size[1]  # 24 rows of 3 samples
    assert "fehu" in result.stdout


def test_data_preview_bad_input(tmp_path):
    assert_usage_error(run_cli("data", "preview", "--out", tmp_path / "x.jpg"), "must end in .png")
    # a row padded to 100000 columns took 11 s and 2 GB for a 9,000,000-pixel-wide PNG
    assert_usage_error(run_cli_in_process("data", "preview", "--per-class", "101", "--out", tmp_path / "p.png"),
                       "--per-class")
    # ".png" alone is a name without a suffix: "must end in .png" contradicted itself
    assert_usage_error(run_cli_in_process("data", "preview", "--out", tmp_path / ".png"),
                       "needs a file name before the .png suffix")
    assert_usage_error(run_cli("data", "preview", "--out", tmp_path / "no" / "dir" / "x.png"), "cannot write")
    (tmp_path / "folder.png").mkdir()
    assert_usage_error(run_cli("data", "preview", "--out", tmp_path / "folder.png"), "is a folder")
    # a training image replaced by the grid, which was then trained on; an MNIST .npz by JSON
    data = tmp_path / "data" / "a"
    data.mkdir(parents=True)
    for shift in range(3):
        Image.fromarray(bar_glyph("across", shift)).save(data / f"{shift}.png")
    image = (data / "1.png").read_bytes()
    assert_usage_error(run_cli_in_process("data", "preview", "--data", data.parent, "--out", data / "1.png"),
                       f"--out {data / '1.png'}: inside --data {data.parent}; write it elsewhere")
    assert_usage_error(run_cli_in_process("evaluate", "--data", data.parent, "--json", data / "s.json"),
                       "inside --data")
    np.savez(tmp_path / "mnist.npz", x_train=np.zeros((1, 28, 28), np.uint8))
    npz = tmp_path / "mnist.npz"
    assert_usage_error(run_cli_in_process("evaluate", "--data", npz, "--json", npz), "is --data")
    assert (data / "1.png").read_bytes() == image and not (data / "s.json").exists()


def test_data_preview_gives_each_class_its_own_row(tmp_path):
    """Classes with fewer images than a row holds end their row early (they ran on into the next
    class's row before), on the edge install too; a row is as long as the largest class shown,
    not --per-class (6 images in rows of 100000 made a PNG 9,000,000 pixels wide)."""
    for kind, count in (("across", 3), ("down", 5)):
        (tmp_path / "bars" / kind).mkdir(parents=True)
        for i in range(count):
            Image.fromarray(bar_glyph(kind, i)).save(tmp_path / "bars" / kind / f"{i}.png")
    out = tmp_path / "preview.png"
    result = run_cli_without_tensorflow("data", "preview", "--data", tmp_path / "bars", "--per-class", "6",
                                        "--out", out, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "8 samples of 2 classes (across, down), one row each" in result.stdout
    with Image.open(out) as image:
        pixels = np.asarray(image)[::3, ::3]  # the grid is drawn 3x: back to 28-pixel tiles, 2 apart
    assert pixels.shape == (2 * 30 + 2, 5 * 30 + 2)
    filled = [[pixels[2 + 30 * r: 30 * (r + 1), 2 + 30 * c: 30 * (c + 1)].max() > 40 for c in range(5)]
              for r in range(2)]
    assert filled == [[True] * 3 + [False] * 2, [True] * 5]


def test_without_scipy_the_commands_that_need_it_say_so(tmp_path):
    """The edge install has no scipy: drawing the built-in runes (their elastic bend) and the
    metrics need it; one line each, not a ModuleNotFoundError traceback."""
    for args in (("data", "preview", "--out", tmp_path / "p.png"), ("evaluate",)):
        result = run_cli_without_tensorflow(*args, cwd=tmp_path, also_blocked=("scipy",))
        assert_usage_error(result, "scipy: pip install scipy (or 'runegen[train]')")
    assert not (tmp_path / "p.png").exists()


def test_train_without_tensorflow_says_what_to_install(tmp_path):
    """On the edge install (no TensorFlow): one line before any work, no run folder."""
    result = run_cli_without_tensorflow("train", "--out", tmp_path / "run", cwd=tmp_path)
    assert_usage_error(result, "training needs TensorFlow: pip install 'runegen[train]'")
    assert not (tmp_path / "run").exists()


def test_generate_notes_more_threads_than_cores_and_refuses_unicode_digits(tmp_path):
    import os

    many = run_cli_without_tensorflow("generate", "-n", "1", "--threads", str((os.cpu_count() or 1) + 1),
                                      "--out", tmp_path / "a.png", cwd=tmp_path)
    assert many.returncode == 0 and "more threads than the" in many.stderr, many.stderr
    if hasattr(os, "sched_setaffinity"):  # pinned to one core (taskset, a container's cpuset): one is all
        every = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(every)})  # inherited by the command's process
        try:
            pinned = run_cli_without_tensorflow("generate", "-n", "1", "--threads", "2", "--out", tmp_path / "p.png",
                                                cwd=tmp_path)
        finally:
            os.sched_setaffinity(0, every)
        assert "more threads than the 1 core this process may run on" in pinned.stderr, pinned.stderr
    # str.isdigit() is True for "²", which int() refuses: a traceback before
    assert_usage_error(run_cli_without_tensorflow("generate", "--class", "²", "--out", tmp_path / "b.png", cwd=tmp_path),
                       "--class ²: not a class")


SIGNAL_MID_WRITE = """
import gc, os, signal, sys, time
from pathlib import Path
from PIL import Image

SENT = getattr(signal, sys.argv.pop(1))
IN_A_FINALIZER = sys.argv[1] == "--in-a-finalizer" and sys.argv.pop(1)


class Collected:
    def __del__(self):  # run by gc.collect(), as the TFLite converter calls it mid-conversion
        os.kill(os.getpid(), SENT)
        for _ in range(1000):  # Python steps inside the finalizer, where the signal's handler runs
            pass


def save_then_signal(image, fp, *args, **kwargs):
    Path(fp).write_bytes(b"half a PNG")
    if IN_A_FINALIZER:
        cycle = Collected()
        cycle.itself = cycle
        del cycle
        gc.collect()
        time.sleep(2)  # the rest of the work
    else:
        os.kill(os.getpid(), SENT)

Image.Image.save = save_then_signal
sys.argv[0] = "runegen"
from runegen.cli import main
main()
"""


@pytest.mark.parametrize("sent, said", [("SIGTERM", "runegen: terminated"), ("SIGINT", "runegen: interrupted"),
                                        ("SIGHUP", "runegen: hung up")])
def test_a_signal_mid_write_leaves_no_temporary_file(tmp_path, sent, said):
    """kill, systemd's stop and docker stop send SIGTERM, a closed terminal SIGHUP: their default
    ended `generate` at once and left its half-written `.a-xxxx.png` beside the target, run after
    run; Ctrl-C exited 130 without a word. Each now unwinds the write (the temporary file removed,
    no target), says so, and ends the process by the signal itself, as Python's own Ctrl-C does
    (a shell script then stops too; systemd counts SIGTERM as a clean stop). The real signal,
    sent mid-write, in a real process."""
    import signal
    import subprocess
    import sys

    from conftest import ROOT

    # started as from a terminal, with the signal's default action, whatever started pytest (nohup,
    # a shell's background job) made its children ignore
    result = subprocess.run([sys.executable, "-c", SIGNAL_MID_WRITE, sent, "generate", "-n", "1", "--out",
                             tmp_path / "a.png"], env={**os.environ, "PYTHONPATH": str(ROOT)},
                            capture_output=True, text=True, timeout=120,
                            preexec_fn=lambda: signal.signal(getattr(signal, sent), signal.SIG_DFL))
    assert (result.returncode, result.stderr.strip()) == (-getattr(signal, sent), said)
    assert list(tmp_path.iterdir()) == []
    # a signal the process was started ignoring (a shell's background job ignores Ctrl-C) stays ignored
    ignoring = subprocess.run([sys.executable, "-c", SIGNAL_MID_WRITE, "SIGINT", "generate", "-n", "1", "--out",
                               tmp_path / "b.png"], env={**os.environ, "PYTHONPATH": str(ROOT)},
                              capture_output=True, text=True, timeout=120,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    assert ignoring.returncode == 0, ignoring.stderr
    assert (tmp_path / "b.png").read_bytes() == b"half a PNG"  # written by the patched save, then renamed


SIGNAL_WHILE_ONNXRUNTIME_LOADS = """
import importlib.abc, importlib.machinery, os, signal, sys


class LoadsThenFails(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    \"\"\"onnxruntime's native module as it loads: whatever is raised meanwhile (the CLI's Stopped, from
    Ctrl-C) comes out as ImportError("initialization failed"), as pybind11's module init makes it.\"\"\"
    def find_spec(self, name, path=None, target=None):
        return importlib.machinery.ModuleSpec(name, self) if name == "onnxruntime" else None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):  # Python steps, where the signal's handler runs
                pass
        except BaseException:
            raise ImportError("initialization failed") from None


sys.meta_path.insert(0, LoadsThenFails())
sys.argv[0] = "runegen"
from runegen.cli import main
main()
"""


def test_a_signal_while_onnxruntime_loads_stops_the_command(tmp_path):
    """Ctrl-C as onnxruntime loaded came out of its import as ImportError, read as "onnxruntime is
    not installed": `generate` drew with the int8 TFLite model instead, replaced --out, then said
    "interrupted" (or, given an .onnx file, "needs onnxruntime: pip install onnxruntime", exit 2)."""
    import signal
    import subprocess
    import sys

    from conftest import ROOT

    for model in ([], [str(ROOT / "runegen" / "models" / "runes-s1" / "generator_f32.onnx")]):
        result = subprocess.run([sys.executable, "-c", SIGNAL_WHILE_ONNXRUNTIME_LOADS, "generate", *model, "-n", "1",
                                 "--out", tmp_path / "a.png"], env={**os.environ, "PYTHONPATH": str(ROOT)},
                                capture_output=True, text=True, timeout=120,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        assert (result.returncode, result.stderr.strip()) == (-signal.SIGINT, "runegen: interrupted")
        assert list(tmp_path.iterdir()) == []


def test_a_signal_heard_inside_a_finalizer_stops_the_command(tmp_path):
    """Ctrl-C heard while gc ran a __del__ (the TFLite converter's gc.collect(), in export) raised
    where Python prints and drops exceptions: the export went on and exited 0 with every file."""
    import signal
    import subprocess
    import sys

    from conftest import ROOT

    result = subprocess.run([sys.executable, "-c", SIGNAL_MID_WRITE, "SIGINT", "--in-a-finalizer", "generate", "-n",
                             "1", "--out", tmp_path / "a.png"], env={**os.environ, "PYTHONPATH": str(ROOT)},
                            capture_output=True, text=True, timeout=120,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert (result.returncode, result.stderr.strip()) == (-signal.SIGINT, "runegen: interrupted")
    assert list(tmp_path.iterdir()) == []
