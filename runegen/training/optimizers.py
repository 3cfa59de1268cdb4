"""The two networks' optimizers: Adam, its rate falling to 0 over the end of the run if asked, and
loss scaling under mixed float16."""

from __future__ import annotations

import keras


class LinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """`rate` until the last `share` of `total_steps`, then linearly down to 0 at the last step.
    A function of the optimizer's step counter, which checkpoints keep: a resumed run decays
    exactly as the uninterrupted one."""

    def __init__(self, rate: float, total_steps: int, share: float):
        self.rate, self.total_steps, self.share = rate, total_steps, share

    def __call__(self, step):
        remaining = (self.total_steps - keras.ops.cast(step, "float32")) / (self.share * self.total_steps)
        return self.rate * keras.ops.clip(remaining, 0.0, 1.0)

    def get_config(self):
        return {"rate": self.rate, "total_steps": self.total_steps, "share": self.share}


def make_optimizer(config, learning_rate: float, total_steps: int | None):
    """Adam with the config's betas, its rate decaying over the end of the run if config.lr_decay;
    under mixed float16 wrapped in a LossScaleOptimizer: float16 gradients of unscaled losses
    underflow (bfloat16 has float32's range and needs no scaling)."""
    if config.lr_decay:
        if not total_steps:
            raise ValueError("config.lr_decay needs the run's total_steps")
        learning_rate = LinearDecay(learning_rate, total_steps, config.lr_decay)
    adam = keras.optimizers.Adam(learning_rate, beta_1=config.beta_1, beta_2=config.beta_2)
    if config.precision == "fp16":
        return keras.optimizers.LossScaleOptimizer(adam)
    return adam
