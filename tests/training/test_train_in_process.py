"""Training in process, through `Run`: Ctrl-C mid-epoch and exact resume, other update schemes and
precisions, the learning-rate decay (checked on the resumed runs), divergence."""

import dataclasses
import os
import signal

import numpy as np
import pytest

from conftest import assert_same_weights
from runegen.data import load_dataset
from runegen.training.config import TrainConfig, save_config
from runegen.training.run import Run, TrainingDiverged


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
    """One rune of each class, 3 steps of 8 an epoch: these tests check the loop's bookkeeping, which
    a batch of 8 exercises as a batch of 64 does, at an eighth of the arithmetic."""
    return TrainConfig(**{"epochs": 2, "batch_size": 8, "samples_per_class": 1, "seed": 3, "eval_every": 0,
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
    # The learning-rate decay is a function of the optimizers' step counters, which resume too; and
    # D at half its width (--d-width) restores from its checkpoint like the preset's own.
    {"conditional": True, "ema": 0.99, "diffaugment": True, "label_smoothing": 0.1, "objective": "bce",
     "lr_decay": 0.5, "d_width": 0.5},
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
    if config.lr_decay:
        assert_rates_decayed_to_zero(resumed)


def assert_rates_decayed_to_zero(run):
    """Both rates held until the last `lr_decay` share of the run's 6 steps, then 0 at its end."""
    assert run.gan.g_optimizer.iterations.numpy() == 6
    for optimizer, rate in [(run.gan.g_optimizer, run.config.lr_g), (run.gan.d_optimizer, run.config.lr_d)]:
        schedule = optimizer._learning_rate  # the LinearDecay itself (Keras keeps it there)
        assert [float(schedule(step)) for step in (0, 3, 6)] == pytest.approx([rate, rate, 0.0])
        assert float(optimizer.learning_rate) == 0.0  # the rate now: the run ended where the decay ends


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
