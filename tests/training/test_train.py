"""Training through the CLI: a tiny real run, resume equivalence, same-seed determinism.
(In-process runs: test_resume_in_process.py, test_train_in_process.py.)"""

import csv
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from conftest import (TINY_SETTINGS, assert_same_weights, assert_usage_error, bar_glyph, cut_back, generator_weights,
                      run_cli, run_cli_in_process)
from runegen.core.errors import UsageError


def test_tiny_run_writes_every_artifact(tiny_run):
    import keras

    out, stderr = tiny_run
    assert "Traceback" not in stderr
    # TensorFlow's start-up lines and grappler's remapper error are kept off the user's terminal
    assert "oneDNN custom operations" not in stderr and "remapper failed" not in stderr
    # a log (not a terminal) gets one whole line per epoch, not the bars again, cut, at the end
    assert [stderr.count(f"epoch {n}/2  g_loss") for n in (1, 2)] == [1, 1]
    assert stderr.count("code_accuracy") == 2  # Q's reading of the latent codes, on each epoch's line
    assert "…" not in stderr, stderr
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["epoch_001.png", "epoch_002.png"]
    with Image.open(out / "progress.gif") as gif:
        assert gif.n_frames == 2
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert {"g_loss", "d_loss", "d_real", "d_fake", "images_per_s"} <= set(rows[0])
    # the quality evaluation of the last epoch, into the same table
    assert rows[1]["fd"] and 0 <= float(rows[1]["recognisability"]) <= 1 and not rows[0]["fd"]
    assert float(rows[1]["density"]) >= 0 and 0 <= float(rows[1]["real_coverage"]) <= 1
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert (out / "checkpoints" / "checkpoint").exists()
    generator = keras.saving.load_model(out / "generator.keras", safe_mode=True)
    assert generator.count_params() == 2_330_944
    fakes = np.asarray(generator(np.zeros((2, 100), "f4"), training=False))
    assert fakes.shape == (2, 28, 28, 1) and np.isfinite(fakes).all()
    assert not list(out.rglob(".*-*"))  # no temporary files left behind


def test_resume_reaches_the_weights_of_an_uninterrupted_run(tiny_run, tmp_path):
    whole, _ = tiny_run  # 2 epochs in one go
    part = cut_back(whole, tmp_path / "part", "ckpt-3")  # 3 steps an epoch: after epoch 1
    resumed = run_cli("train", "--resume", "--epochs", "2", "--out", part)
    assert resumed.returncode == 0, resumed.stderr
    assert_same_weights(generator_weights(whole / "generator.keras"),
                        generator_weights(part / "generator.keras"))
    assert [r["epoch"] for r in csv.DictReader(open(part / "metrics.csv"))] == ["1", "2"]


def test_resume_of_a_finished_run_leaves_it_and_a_longer_one_records_its_new_total(tiny_run, tmp_path):
    """--resume on a run that has trained its epochs changes nothing; --epochs under what it has
    trained is refused; --epochs above trains on and config.json, which a later --resume reads,
    says the new total (it kept the first one, so that a second --resume stopped short)."""
    run = shutil.copytree(tiny_run[0], tmp_path / "run")
    before, events = (run / "generator.keras").read_bytes(), sorted((run / "tensorboard").iterdir())
    finished = run_cli_in_process("train", "--resume", "--out", run)
    assert finished.returncode == 0 and "has trained its 2 epochs: nothing to do" in finished.stderr
    assert (run / "generator.keras").read_bytes() == before
    assert_usage_error(run_cli_in_process("train", "--resume", "--epochs", "1", "--out", run),
                       "--epochs 1: the run in")
    # a hand-edited config.json's total is named as its own (it was "--epochs 1", as if given)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "epochs": 1}))
    assert_usage_error(run_cli_in_process("train", "--resume", "--out", run),
                       f"{run / 'config.json'}: epochs 1: the run in {run} has trained 2 epochs already")
    (run / "config.json").write_text(json.dumps(config))
    assert sorted((run / "tensorboard").iterdir()) == events  # each added an empty event file
    longer = run_cli_in_process("train", "--resume", "--epochs", "3", "--eval-every", "0", "--out", run)
    assert longer.returncode == 0, longer.stderr
    assert json.loads((run / "config.json").read_text())["epochs"] == 3
    assert [r["epoch"] for r in csv.DictReader(open(run / "metrics.csv"))] == ["1", "2", "3"]
    assert "has trained its 3 epochs: nothing to do" in run_cli_in_process("train", "--resume", "--out", run).stderr


def test_a_finished_run_whose_generator_is_an_earlier_one_is_finished_again(tiny_run, tmp_path):
    """A run resumed for more epochs and stopped as it ended (or killed while saving) kept the
    shorter run's generator.keras: --resume, as its own message says, answered "nothing to do" for
    good. Here the file is another model's."""
    whole, _ = tiny_run
    run = tmp_path / "run"
    shutil.copytree(whole, run)
    from runegen.training.nets import PRESETS

    PRESETS["s1"].generator().save(run / "generator.keras")  # the same shapes, other weights
    result = run_cli_in_process("train", "--resume", "--out", run)
    assert result.returncode == 0, result.stderr
    assert "nothing to do" not in result.stderr
    assert "finishing the run from its last checkpoint (epoch 2)" in result.stderr
    assert_same_weights(generator_weights(whole / "generator.keras"), generator_weights(run / "generator.keras"))
    assert "nothing to do" in run_cli_in_process("train", "--resume", "--out", run).stderr


def test_a_run_folder_another_training_holds_is_refused(tiny_run, tmp_path):
    """Two runs in one folder both exited 0 with their files mixed, and a --resume beside a running
    training trained it twice at once. Its lock is this process's while it trains, then let go."""
    from runegen.commands.run_folder import run_folder_lock

    run = shutil.copytree(tiny_run[0], tmp_path / "run")
    with run_folder_lock(run):  # as a training in another process holds it
        assert_usage_error(run_cli_in_process("train", "--resume", "--out", run),
                           "another runegen train is training in it")
    assert "nothing to do" in run_cli_in_process("train", "--resume", "--out", run).stderr


def test_a_checkpoint_index_whose_files_are_gone_is_one_error(tiny_run, tmp_path, caplog):
    run = shutil.copytree(tiny_run[0], tmp_path / "run")
    for file in (run / "checkpoints").glob("ckpt-*"):
        file.unlink()
    result = run_cli_in_process("train", "--resume", "--epochs", "3", "--out", run)
    assert_usage_error(result, "--resume: no checkpoint in")
    assert not [r for r in caplog.records if r.name == "tensorflow"]  # TensorFlow's own ERROR line


@pytest.mark.parametrize("state", [None, "junk\n", ""])
def test_a_lost_or_garbled_checkpoint_state_resumes_from_the_newest_checkpoint(tiny_run, tmp_path, caplog, state):
    """checkpoints/checkpoint (TensorFlow's note of the latest checkpoint) deleted, garbled or empty,
    the ckpt-* files intact: --resume trained from the beginning, over the finished run's generator
    (deleted), said "no checkpoint" after TensorFlow's WARNING lines (garbled), or was a traceback
    (empty). The note is written again, so that the checkpoints are kept two at a time as before."""
    run = shutil.copytree(tiny_run[0], tmp_path / "run")
    (run / "checkpoints" / "checkpoint").unlink()
    if state is not None:
        (run / "checkpoints" / "checkpoint").write_text(state)
    result = run_cli_in_process("train", "--resume", "--epochs", "3", "--eval-every", "0", "--out", run)
    assert result.returncode == 0, result.stderr
    assert "resumed at epoch 3, step 0" in result.stderr and "from the beginning" not in result.stderr
    assert [r["epoch"] for r in csv.DictReader(open(run / "metrics.csv"))] == ["1", "2", "3"]
    assert sorted(p.name for p in (run / "checkpoints").glob("ckpt-*.index")) == ["ckpt-6.index", "ckpt-9.index"]
    # none of TensorFlow's lines on a garbled state ("...: Checkpoint ignored"); its tf.function
    # retracing warning, which the in-process trainings before this one in a worker bring on, is no part
    assert not [r for r in caplog.records if r.name == "tensorflow" and "retracing" not in r.getMessage()]


def test_a_partial_index_is_passed_over(tiny_run, tmp_path):
    """A save killed while it wrote ckpt-N.index (TensorFlow writes it in place, before its note):
    the newest readable checkpoint is restored; none readable and no note is a run stopped before
    its first checkpoint; none readable and an unreadable note, no checkpoint."""
    run = shutil.copytree(tiny_run[0], tmp_path / "run")
    checkpoints = run / "checkpoints"
    (checkpoints / "checkpoint").unlink()
    newest = checkpoints / "ckpt-6.index"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    result = run_cli_in_process("train", "--resume", "--epochs", "2", "--eval-every", "0", "--out", run)
    assert result.returncode == 0, result.stderr
    assert "resumed at epoch 2, step 0" in result.stderr
    (checkpoints / "ckpt-3.index").write_bytes(b"")
    (checkpoints / "ckpt-6.index").write_bytes(b"")
    (checkpoints / "checkpoint").write_text("")
    assert_usage_error(run_cli_in_process("train", "--resume", "--epochs", "2", "--eval-every", "0", "--out", run),
                       "--resume: no checkpoint in")
    (checkpoints / "checkpoint").unlink()
    result = run_cli_in_process("train", "--resume", "--epochs", "1", "--eval-every", "0", "--out", run)
    assert result.returncode == 0, result.stderr
    assert "training from the beginning" in result.stderr


def test_a_truncated_checkpoint_or_changed_data_is_one_error(tiny_run, tmp_path):
    """Both ended --resume in a traceback (IndexError; a class embedding of the wrong shape), or
    resumed silently on other data."""
    run = shutil.copytree(tiny_run[0], tmp_path / "run")
    assert json.loads((run / "checkpoints" / "data.json").read_text()) == {
        "images": 96, "classes": json.loads((run / "classes.json").read_text())}
    (run / "checkpoints" / "data.json").write_text(json.dumps({"images": 97, "classes": ["a"]}))
    assert_usage_error(run_cli_in_process("train", "--resume", "--epochs", "3", "--out", run),
                       "the data changed since the run began (97 images, 1 classes then, 96 images, 24 classes now")
    (run / "checkpoints" / "data.json").unlink()  # a run from before the record: classes.json is compared
    data = max((run / "checkpoints").glob("ckpt-*.data-*"))
    data.write_bytes(data.read_bytes()[:1000])
    assert_usage_error(run_cli_in_process("train", "--resume", "--epochs", "3", "--out", run),
                       "cannot restore this run's networks from it")


def test_a_run_whose_samples_folder_was_deleted_resumes(tiny_run, tmp_path):
    """samples/ deleted (to save room, say) and --resume: a FileNotFoundError traceback at the first
    epoch's end, when its sample grid was written. classes.json deleted: the resumed run's
    generator.keras lost its class names (they were written only when a run began)."""
    run = shutil.copytree(tiny_run[0], tmp_path / "run")
    classes = (run / "classes.json").read_text()
    shutil.rmtree(run / "samples")
    (run / "classes.json").unlink()
    result = run_cli_in_process("train", "--resume", "--epochs", "3", "--eval-every", "0", "--out", run)
    assert result.returncode == 0, result.stderr
    assert (run / "samples" / "epoch_003.png").is_file()
    assert (run / "classes.json").read_text() == classes


@pytest.mark.parametrize("part, folder", [("samples", False), ("checkpoints", False), ("tensorboard", False),
                                          ("metrics.csv", True)])
def test_a_run_folder_with_a_file_where_a_folder_belongs_is_one_error(tiny_run, tmp_path, part, folder):
    """A file where the run keeps a folder, or the reverse: --resume was a traceback
    (FileExistsError, TensorFlow's FailedPreconditionError, IsADirectoryError)."""
    run = shutil.copytree(tiny_run[0], tmp_path / "run")
    shutil.rmtree(run / part) if (run / part).is_dir() else (run / part).unlink()
    (run / part).mkdir() if folder else (run / part).write_text("x")
    result = run_cli_in_process("train", "--resume", "--epochs", "3", "--eval-every", "0", "--out", run)
    assert_usage_error(result, f"--resume: {run / part} is a {'folder' if folder else 'file'}")


def test_a_flat_image_folder_that_moved_resumes_from_its_new_path(tmp_path):
    """A folder of images without class subfolders has one class, named after the folder: moved
    and given again (as --resume's own error says to), it was refused as changed data ("1
    classes then, 1 classes now")."""

    from conftest import bar_glyph

    (tmp_path / "glyphs").mkdir()
    for n in range(16):
        Image.fromarray(bar_glyph(("across", "down")[n % 2], n % 8)).save(tmp_path / "glyphs" / f"{n}.png")
    run = tmp_path / "run"
    first = run_cli_in_process("train", "--data", tmp_path / "glyphs", "--epochs", "1", "--batch-size", "8",
                               "--eval-every", "0", "--codes", "6", "--out", run)  # 6 codes: a grid of 24
    assert first.returncode == 0, first.stderr
    (tmp_path / "glyphs").rename(tmp_path / "moved")
    (tmp_path / "moved" / "15.png").rename(tmp_path / "15.png")  # and one image fewer: said so, not the name
    assert_usage_error(run_cli_in_process("train", "--resume", "--epochs", "2", "--data", tmp_path / "moved", "--out", run),
                       "(16 images then, 15 images now;")
    (tmp_path / "15.png").rename(tmp_path / "moved" / "15.png")
    resumed = run_cli_in_process("train", "--resume", "--epochs", "2", "--data", tmp_path / "moved", "--out", run)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed at epoch 2" in resumed.stderr


def test_a_run_folder_inside_its_image_folder_is_refused(tmp_path):
    """Its sample grids became training images: a --resume read progress.gif as the only class and
    said the batch was larger than the dataset (1 image)."""
    data = tmp_path / "glyphs"
    data.mkdir()
    for shift in range(4):
        Image.fromarray(bar_glyph("across", shift)).save(data / f"{shift}.png")
    assert_usage_error(run_cli_in_process("train", "--data", data, "--batch-size", "4", "--out", data / "run"),
                       "a folder of --data")
    assert not (data / "run").exists()
    from runegen.commands.run_folder import check_outside_data

    check_outside_data(str(data), data / "runs" / "train")  # deeper, not read: `cd glyphs; runegen train --data .`
    check_outside_data(str(data), data / ".run")  # hidden, not read either
    (tmp_path / "elsewhere").symlink_to(data / "run2")  # a link to a folder of it
    with pytest.raises(UsageError, match="a folder of --data"):
        check_outside_data(str(data), tmp_path / "elsewhere")


def test_run_folders_training_cannot_use(tmp_path):
    """A path TensorFlow reads as a glob pattern: its checkpoints are saved but never found again
    (and exp[/] was rich markup: a traceback); a file is not a folder."""
    assert_usage_error(run_cli_in_process("train", "--out", tmp_path / "exp[1]"), "no [ ] * ? in a run folder's path")
    (tmp_path / "file").write_text("x")
    assert_usage_error(run_cli_in_process("train", "--out", tmp_path / "file"), "exists and is not a folder")
    assert_usage_error(run_cli_in_process("train", "--resume", "--out", tmp_path / "file"), "holds no run")
    assert not (tmp_path / "exp[1]").exists() and (tmp_path / "file").read_text() == "x"


def test_same_seed_same_weights_and_another_seed_differs(tiny_run, tmp_path):
    """As users run it: separate processes. (Two trainings inside one long-lived pytest process,
    after other TensorFlow work, were once seen to differ at Adam-step scale; see README.) Neither
    the evaluation nor the checkpoints of tiny_run change its weights."""
    def train(seed, run=run_cli):
        out = tmp_path / f"seed{seed}"
        assert run("train", "--epochs", "2", *TINY_SETTINGS, "--eval-every", "0", "--seed", seed,
                   "--out", out).returncode == 0
        return generator_weights(out / "generator.keras")

    first = generator_weights(tiny_run[0] / "generator.keras")  # TINY_RUN's seed, another process
    assert_same_weights(first, train(1))
    assert not np.array_equal(first[0], train(2, run_cli_in_process)[0])  # to differ, this process will do


def test_auto_precision_by_device():
    from runegen.training.config import auto_precision

    assert auto_precision({"avx2"}, []) == "fp32"
    assert auto_precision({"avx2", "avx512_bf16"}, []) == "bf16"
    assert auto_precision({"avx512_bf16"}, [(9, 0), (8, 0)]) == "bf16"  # A100/H100: bfloat16 cores
    assert auto_precision({"avx512_bf16"}, [(9, 0), (7, 5)]) == "fp16"  # the weakest GPU decides
    assert auto_precision(set(), [(7, 0)]) == "fp16"  # V100: fp16 tensor cores, loss scaling
    assert auto_precision(set(), [(6, 1)]) == "fp32"
    assert auto_precision(set(), [None]) == "fp32"  # capability unknown


def test_auto_precision_is_fp32_where_onednn_is_held_below_bf16(monkeypatch):
    """ONEDNN_MAX_CPU_ISA=AVX2 (how the docs stand in for the AVX2 class) on a bf16 CPU: `auto` read
    bf16 off the CPU's flags and the first bf16 step aborted the process in oneDNN."""
    from runegen.training import config

    monkeypatch.setattr(config, "cpu_flags", lambda: {"avx2", "avx512f", "avx512_bf16"})
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    assert config.resolve_precision("auto") == "bf16"
    for held, precision in (("AVX2", "fp32"), ("avx512_core", "fp32"), ("AVX512_CORE_BF16", "bf16")):
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", held)
        assert config.resolve_precision("auto") == precision, held


def test_bf16_where_onednn_is_held_below_it_is_refused(monkeypatch, tmp_path):
    """Asked for, or a bf16 run resumed, under ONEDNN_MAX_CPU_ISA=AVX2 on a CPU-only machine: the
    first step aborted the process in oneDNN (exit 134), and a resume could not change precision."""
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    result = run_cli_in_process("train", "--precision", "bf16", *TINY_SETTINGS, "--out", tmp_path / "r")
    assert_usage_error(result, "bf16 on the CPU needs oneDNN's bf16 kernels, which ONEDNN_MAX_CPU_ISA=AVX2 holds off")
    assert not (tmp_path / "r").exists()


def test_a_run_folder_whose_name_is_not_utf8_is_refused(tmp_path):
    """TensorFlow's checkpoint manager keeps paths as UTF-8 text: a UnicodeEncodeError traceback,
    an empty folder left behind."""
    out = tmp_path / os.fsdecode(b"u3\xe9")
    assert_usage_error(run_cli_in_process("train", "--out", out), "not valid UTF-8")
    assert not out.exists()


def test_a_progress_gif_wider_than_gif_allows_is_shrunk_to_fit(tmp_path):
    """730 codes or classes draw sample grids 65,706 px wide: save_progress_gif raised OverflowError
    after the whole run, and no generator.keras was ever written."""
    from runegen.training.logs import GIF_MAX_SIDE, save_progress_gif

    Image.new("L", (GIF_MAX_SIDE + 200, 30), 40).save(tmp_path / "epoch_001.png")
    save_progress_gif(tmp_path, tmp_path / "progress.gif")
    with Image.open(tmp_path / "progress.gif") as gif:
        assert gif.width == GIF_MAX_SIDE and gif.height == 29


def test_runes_drawn_beside_the_tensorflow_import_are_the_runes_drawn_here(tmp_path):
    from runegen.commands.loading import loaded_beside_tensorflow
    from runegen.core.errors import DataError
    from runegen.data import load_dataset

    beside, here = loaded_beside_tensorflow("runes", 3, 5), load_dataset("runes", 3, 5)
    assert np.array_equal(beside.images, here.images) and np.array_equal(beside.labels, here.labels)
    with pytest.raises(DataError, match="no such file or folder"):  # raised there, raised here
        loaded_beside_tensorflow(str(tmp_path / "missing"), 3, 0)


def test_runes_are_drawn_here_where_no_process_pool_can_start(monkeypatch):
    import concurrent.futures

    from runegen.commands.loading import loaded_beside_tensorflow
    from runegen.data import load_dataset

    def no_semaphores(*args, **kwargs):
        raise OSError(38, "Function not implemented")  # as on hosts without /dev/shm

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", no_semaphores)
    assert np.array_equal(loaded_beside_tensorflow("runes", 2, 0).images, load_dataset("runes", 2, 0).images)


def test_runes_are_drawn_here_when_the_drawing_process_dies(monkeypatch):
    import concurrent.futures
    import os

    from runegen.commands.loading import loaded_beside_tensorflow
    from runegen.data import load_dataset

    class PoolWhoseProcessDies(concurrent.futures.ProcessPoolExecutor):
        def submit(self, fn, *args):  # the real process exits abruptly, as when killed
            return super().submit(os._exit, 9)

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", PoolWhoseProcessDies)
    assert np.array_equal(loaded_beside_tensorflow("runes", 2, 0).images, load_dataset("runes", 2, 0).images)


def test_class_names_are_compared_as_text_on_resume(tmp_path):
    """A class folder copied from a Mac names "béta" as "e" and an accent (NFD): the same names were
    refused as changed data ("classes alpha, béta then, classes alpha, béta now"). Names that sort
    otherwise so are still refused: their labels would be another order."""
    from runegen.core.errors import RunStateError
    from runegen.data import GlyphDataset
    from runegen.training.resume import check_same_data

    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "data.json").write_text(json.dumps({"images": 2, "classes": ["alpha", "b\u00e9ta"]}))

    def data(*names):
        return GlyphDataset("d", np.zeros((2, 28, 28, 1), np.float32), np.arange(2, dtype=np.int32), names)

    check_same_data(tmp_path, data("alpha", "be\u0301ta"))
    with pytest.raises(RunStateError, match="the data changed since the run began"):
        check_same_data(tmp_path, data("be\u0301ta", "alpha"))
