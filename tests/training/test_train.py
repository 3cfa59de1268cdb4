"""Training: a tiny real run through the CLI, resume equivalence, Ctrl-C, divergence."""

import csv
import dataclasses
import os
import shutil
import signal

import numpy as np
import pytest

from conftest import run_cli
from runegen.data import load_dataset
from runegen.training.config import TrainConfig, save_config
from runegen.training.run import Run, TrainingDiverged

# 96 runes, 3 steps an epoch; no quality evaluation (10 s a run), except in tiny_run, which checks it
SETTINGS = ("--batch-size", "32", "--samples-per-class", "4", "--eval-every", "0")
TINY = (*SETTINGS, "--seed", "1")


def generator_weights(path):
    import keras

    return keras.saving.load_model(path, safe_mode=True).get_weights()


def assert_same_weights(a, b):
    assert len(a) == len(b)
    for left, right in zip(a, b):
        np.testing.assert_array_equal(left, right)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny"
    result = run_cli("train", "--epochs", "2", "--checkpoint-every", "1", *TINY, "--eval-every", "2", "--out", out)
    assert result.returncode == 0, result.stderr
    return out, result


@pytest.fixture(scope="module")
def one_epoch(tmp_path_factory):
    """The first epoch of tiny_run's settings, alone: resumed below, and retrained for determinism."""
    out = tmp_path_factory.mktemp("runs") / "one_epoch"
    assert run_cli("train", "--epochs", "1", *TINY, "--out", out).returncode == 0
    return out


def test_tiny_run_writes_every_artifact(tiny_run):
    import keras

    out, result = tiny_run
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["epoch_001.png", "epoch_002.png"]
    from PIL import Image
    with Image.open(out / "progress.gif") as gif:
        assert gif.n_frames == 2
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert {"g_loss", "d_loss", "d_real", "d_fake", "images_per_s"} <= set(rows[0])
    # the quality evaluation of the last epoch, into the same table
    assert rows[1]["fd"] and 0 <= float(rows[1]["recognisability"]) <= 1 and not rows[0]["fd"]
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert (out / "checkpoints" / "checkpoint").exists()
    generator = keras.saving.load_model(out / "generator.keras", safe_mode=True)
    assert generator.count_params() == 2_330_944
    fakes = np.asarray(generator(np.zeros((2, 100), "f4"), training=False))
    assert fakes.shape == (2, 28, 28, 1) and np.isfinite(fakes).all()
    assert not list(out.rglob(".*-*"))  # no temporary files left behind


def test_resume_reaches_the_weights_of_an_uninterrupted_run(tiny_run, one_epoch, tmp_path):
    whole, _ = tiny_run  # 2 epochs in one go
    part = tmp_path / "part"
    shutil.copytree(one_epoch, part)
    resumed = run_cli("train", "--resume", "--epochs", "2", "--out", part)
    assert resumed.returncode == 0, resumed.stderr
    assert_same_weights(generator_weights(whole / "generator.keras"),
                        generator_weights(part / "generator.keras"))
    assert [r["epoch"] for r in csv.DictReader(open(part / "metrics.csv"))] == ["1", "2"]


class InterruptAt:
    """A progress display that presses Ctrl-C (a real SIGINT) after `after` steps."""

    def __init__(self, after=None):
        self.after, self.steps = after, 0

    def add_task(self, *args, **kwargs):
        return 0

    def update(self, task, completed=None, **kwargs):
        if completed is not None:  # one call per training step
            self.steps += 1
            if self.steps == self.after:
                os.kill(os.getpid(), signal.SIGINT)


def tiny_config(**changes):
    return TrainConfig(**{"epochs": 2, "batch_size": 32, "samples_per_class": 4, "seed": 3, "eval_every": 0,
                          **changes})


def train_in_process(out, config, progress, resume=False):
    dataset = load_dataset("runes", config.samples_per_class, config.seed)
    run = Run(config, out, dataset)
    if resume:
        run.restore()
    else:
        (out / "samples").mkdir(parents=True)
        save_config(config, out)
    run.train(progress)
    return run


@pytest.mark.parametrize("changes", [
    {},  # the default: hinge, spectral norm (its power-iteration vectors), latent codes, EMA
    # The tutorial's recipe: BCE, D with Dropout, whose seed generators must be checkpointed too.
    {"objective": "bce", "spectral_norm": False, "codes": 0, "beta_1": 0.5, "beta_2": 0.999},
    # Every stabiliser and the conditional pair: the weight average, the augmentation draws and
    # the fake labels must all resume where they stopped.
    # The learning-rate decay is a function of the optimizers' step counters, which resume too.
    {"conditional": True, "ema": 0.99, "diffaugment": True, "label_smoothing": 0.1, "objective": "bce",
     "lr_decay": 0.5},
], ids=["default", "tutorial", "conditional+stabilisers"])
def test_ctrl_c_mid_epoch_checkpoints_and_resumes_exactly(tmp_path, changes):
    config = tiny_config(**changes)
    reference = train_in_process(tmp_path / "ref", config, InterruptAt())
    with pytest.raises(KeyboardInterrupt, match="checkpoint saved"):
        train_in_process(tmp_path / "cut", config, InterruptAt(after=2))  # 2 of 3 steps of epoch 1
    resumed = train_in_process(tmp_path / "cut", config, InterruptAt(), resume=True)
    assert_same_weights(reference.gan.generator.get_weights(), resumed.gan.generator.get_weights())
    assert_same_weights(reference.gan.discriminator.get_weights(), resumed.gan.discriminator.get_weights())
    assert_same_weights(reference.gan.sampler.get_weights(), resumed.gan.sampler.get_weights())


def test_same_seed_same_weights_and_another_seed_differs(one_epoch, tmp_path):
    """As users run it: separate processes. (Two trainings inside one long-lived pytest process,
    after other TensorFlow work, were once seen to differ at Adam-step scale; see README.)"""
    def train(seed):
        out = tmp_path / f"seed{seed}"
        assert run_cli("train", "--epochs", "1", *SETTINGS, "--seed", seed, "--out", out).returncode == 0
        return generator_weights(out / "generator.keras")

    first = generator_weights(one_epoch / "generator.keras")  # TINY's seed, another process
    assert_same_weights(first, train(1))
    assert not np.array_equal(first[0], train(2)[0])


@pytest.mark.parametrize("update, precision, jit", [
    ("alternating", "fp32", False), ("simultaneous", "bf16", False),
    ("simultaneous", "fp16", True),  # mixed float16: loss scaling; and the step compiled by XLA
])
def test_other_update_scheme_and_precision_train(tmp_path, update, precision, jit):
    run = train_in_process(tmp_path / "r", tiny_config(epochs=1, update=update, precision=precision,
                                                       preset="s2", jit=jit), InterruptAt())
    assert (tmp_path / "r" / "samples" / "epoch_001.png").exists()
    assert all(np.isfinite(w).all() for w in run.gan.generator.get_weights())
    scaled = isinstance(run.gan.g_optimizer, __import__("keras").optimizers.LossScaleOptimizer)
    assert scaled == (precision == "fp16")


def test_learning_rates_decay_to_zero_over_the_end_of_the_run(tmp_path):
    run = train_in_process(tmp_path / "r", tiny_config(epochs=2, lr_decay=0.5), InterruptAt())  # 6 steps
    for optimizer, rate in [(run.gan.g_optimizer, run.config.lr_g), (run.gan.d_optimizer, run.config.lr_d)]:
        schedule = optimizer._learning_rate  # the LinearDecay itself (Keras keeps it there)
        assert [float(schedule(step)) for step in (0, 3, 6)] == pytest.approx([rate, rate, 0.0])
        assert float(optimizer.learning_rate) == 0.0  # the rate now: the run ended where the decay ends


def test_auto_precision_by_device():
    from runegen.training.config import auto_precision

    assert auto_precision({"avx2"}, []) == "fp32"
    assert auto_precision({"avx2", "avx512_bf16"}, []) == "bf16"
    assert auto_precision({"avx512_bf16"}, [(9, 0), (8, 0)]) == "bf16"  # A100/H100: bfloat16 cores
    assert auto_precision({"avx512_bf16"}, [(9, 0), (7, 5)]) == "fp16"  # the weakest GPU decides
    assert auto_precision(set(), [(7, 0)]) == "fp16"  # V100: fp16 tensor cores, loss scaling
    assert auto_precision(set(), [(6, 1)]) == "fp32"
    assert auto_precision(set(), [None]) == "fp32"  # capability unknown


def test_divergence_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    out = tmp_path / "nan"
    good = train_in_process(out, tiny_config(epochs=1), InterruptAt())
    last_good = good.checkpoints.latest_checkpoint
    poisoned = dataclasses.replace(good.dataset, images=np.full_like(good.dataset.images, np.nan))
    run = Run(tiny_config(epochs=2), out, poisoned)
    run.restore()
    with pytest.raises(TrainingDiverged, match=f"diverged at epoch 2, step 1.*{last_good}"):
        run.train(InterruptAt())
    assert run.checkpoints.latest_checkpoint == last_good
    assert not (out / "generator.keras").exists()
