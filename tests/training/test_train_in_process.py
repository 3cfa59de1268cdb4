"""Training in process, through `Run`: other update schemes and precisions, divergence.
(Ctrl-C and exact resume: test_resume_in_process.py.)"""

import dataclasses

import numpy as np
import pytest

from in_process import InterruptAt, tiny_config, train_in_process
from runegen.training.run import Run, TrainingDiverged


@pytest.mark.parametrize("update, precision, jit, preset", [
    ("alternating", "fp32", False, "s2"), ("simultaneous", "bf16", False, "s2"),
    # mixed float16: loss scaling; and the default preset's step compiled by XLA (s1's compiles in
    # 14 s on a 2-core AMD EPYC, s2's in 18 s)
    ("simultaneous", "fp16", True, "s1"),
])
def test_other_update_scheme_and_precision_train(tmp_path, update, precision, jit, preset):
    run = train_in_process(tmp_path / "r", tiny_config(epochs=1, update=update, precision=precision,
                                                       preset=preset, jit=jit), InterruptAt())
    assert (tmp_path / "r" / "samples" / "epoch_001.png").exists()
    assert all(np.isfinite(w).all() for w in run.gan.generator.get_weights())
    scaled = isinstance(run.gan.g_optimizer, __import__("keras").optimizers.LossScaleOptimizer)
    assert scaled == (precision == "fp16")
    # An epoch's batches come without tf.data's autotuner, whose thread held epochs to 20.48,
    # 40.96 or 81.92 s (runegen/training/tf_settings.py: without_autotune)
    assert run.batches(0, 0).options().autotune.enabled is False


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


def test_weights_made_non_finite_by_the_last_step_are_not_saved(tmp_path):
    """A rate of 1e308 (infinity in float32): the losses of each step were finite, computed before
    its update, so a run whose last step broke the weights checkpointed them and ended "done", its
    generator.keras all NaN. The weights are checked before each checkpoint."""
    out = tmp_path / "inf"
    with pytest.raises(TrainingDiverged, match="diverged at epoch 1, step 1: G's weights are no longer finite"):
        train_in_process(out, tiny_config(epochs=1, batch_size=24, lr_g=1e308), InterruptAt())  # one step
    assert not list((out / "checkpoints").glob("ckpt-*"))


def test_a_run_stopped_before_its_first_checkpoint_starts_again(tmp_path):
    """Stopped (or diverged) before any checkpoint, a run folder could be neither resumed ("no
    checkpoint") nor reused ("not empty"); --resume now trains it from the beginning."""
    from runegen.data import load_dataset

    config = tiny_config()
    run = Run(config, tmp_path / "early", load_dataset("runes", config.samples_per_class, config.seed))
    assert run.restore() is False and int(run.epoch.numpy()) == 0


def test_ctrl_c_as_the_last_epoch_ends_is_heard(tmp_path):
    """Ctrl-C while the last epoch ended (its samples, scores and checkpoint) was let pass: the run
    went on to finish as if never asked to stop. It stops there, its last checkpoint saved (a
    --resume then writes generator.keras)."""
    import os
    import signal

    from runegen.training.resume import TrainingStopped

    class AtTheEnd(InterruptAt):
        def update(self, task, completed=None, **kwargs):
            if completed is None:  # the epoch's closing row, after its checkpoint
                os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(TrainingStopped, match="interrupted as training ended; checkpoint saved: .*ckpt-3") as stopped:
        train_in_process(tmp_path / "r", tiny_config(epochs=1), AtTheEnd())
    assert stopped.value.exit_code == 130
    resumed = train_in_process(tmp_path / "r", tiny_config(epochs=1), InterruptAt(), resume=True)
    assert resumed.finish().is_file()  # nothing left to train: the generator written


def test_a_second_signal_stops_at_once_with_its_own_exit_code():
    """The first asks for a checkpoint after the step; a second one (SIGTERM: 143) stops at once."""
    import signal

    from runegen.training.resume import StopRequest, TrainingStopped

    stop = StopRequest()
    stop._handle(signal.SIGINT, None)
    assert stop.requested == "interrupted" and stop.exit_code == 130
    with pytest.raises(TrainingStopped, match="terminated again") as again:
        stop._handle(signal.SIGTERM, None)
    assert again.value.exit_code == 143


def test_a_stop_signal_that_was_ignored_stays_ignored_while_training():
    """`nohup runegen train ... &`: nohup ignores SIGHUP (and a shell's background job Ctrl-C), as
    runegen.cli leaves it; training's own handler took it back, and a closed terminal stopped the
    run ("hung up; checkpoint saved", exit 129)."""
    import signal

    from runegen.training.resume import StopRequest

    ignored = signal.SIGHUP if hasattr(signal, "SIGHUP") else signal.SIGINT
    previous = signal.signal(ignored, signal.SIG_IGN)
    try:
        with StopRequest():
            assert signal.getsignal(ignored) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_IGN  # the others are heard
        assert signal.getsignal(ignored) is signal.SIG_IGN
    finally:
        signal.signal(ignored, previous)
