"""Ctrl-C mid-epoch and exact resume, in process through `Run`, for the default recipe, the
tutorial's and every stabiliser with the conditional pair; the learning-rate decay is checked on
the resumed runs."""

import signal

import pytest

from conftest import assert_same_weights
from in_process import InterruptAt, tiny_config, train_in_process


@pytest.mark.parametrize("changes", [
    {},  # the default: hinge, spectral norm (its power-iteration vectors), latent codes, EMA
    # The tutorial's recipe: BCE, D with Dropout, whose seed generators must be checkpointed too.
    {"objective": "bce", "spectral_norm": False, "codes": 0, "beta_1": 0.5, "beta_2": 0.999},
    # Every stabiliser and the conditional pair: the weight average, the augmentation draws and
    # the fake labels must all resume where they stopped.
    # The learning-rate decay is a function of the optimizers' step counters, which resume too; and
    # D at half its width (--d-width) restores from its checkpoint like the preset's own.
    # The lazy R1 penalty is paid on every 2nd D step by its step counter: after the cut at step 2 too.
    {"conditional": True, "ema": 0.99, "diffaugment": True, "label_smoothing": 0.1, "objective": "bce",
     "lr_decay": 0.5, "d_width": 0.5, "r1": 1.0, "r1_every": 2},
], ids=["default", "tutorial", "conditional+stabilisers"])
def test_ctrl_c_mid_epoch_checkpoints_and_resumes_exactly(tmp_path, changes):
    config = tiny_config(**changes)
    reference = train_in_process(tmp_path / "ref", config, InterruptAt())
    # SIGTERM (kill, Slurm, Kubernetes) stops a run as Ctrl-C does; it ended runs with nothing saved
    sent = signal.SIGTERM if changes.get("objective") == "bce" else signal.SIGINT
    with pytest.raises(KeyboardInterrupt, match="checkpoint saved") as stopped:
        train_in_process(tmp_path / "cut", config, InterruptAt(after=2, sent=sent))  # 2 of 3 steps of epoch 1
    assert stopped.value.exit_code == 128 + sent
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
