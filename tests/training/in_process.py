"""Training in the test process, through `Run`: a tiny config, a run folder as the CLI makes it,
and a progress display that presses Ctrl-C. Shared by test_resume_in_process.py and
test_train_in_process.py (two modules, so that two xdist workers can take one each)."""

import os
import signal

from runegen.data import load_dataset
from runegen.training.config import TrainConfig, save_config
from runegen.training.run import Run


class InterruptAt:
    """A progress display that presses Ctrl-C (a real SIGINT), or sends `sent` (SIGTERM: kill,
    Slurm, Kubernetes), after `after` steps."""

    def __init__(self, after=None, sent=signal.SIGINT):
        self.after, self.steps, self.sent = after, 0, sent

    def add_task(self, *args, **kwargs):
        return 0

    def update(self, task, completed=None, **kwargs):
        if completed is not None:  # one call per training step
            self.steps += 1
            if self.steps == self.after:
                os.kill(os.getpid(), self.sent)


def tiny_config(**changes):
    """One rune of each class, 3 steps of 8 an epoch, 6 latent codes: these tests check the loop's
    bookkeeping, which a batch of 8 exercises as a batch of 64 does, at an eighth of the arithmetic,
    and 6 codes as the default 60 do, with an epoch's sample grid of 24 glyphs instead of 240."""
    return TrainConfig(**{"epochs": 2, "batch_size": 8, "samples_per_class": 1, "seed": 3, "eval_every": 0,
                          "codes": 6, **changes})


def train_in_process(out, config, progress, resume=False):
    dataset = load_dataset("runes", config.samples_per_class, config.seed)
    run = Run(config, out, dataset)
    if resume:
        assert run.restore()
    else:
        (out / "samples").mkdir(parents=True)
        save_config(config, out)
    run.train(progress)
    return run
