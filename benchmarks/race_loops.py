"""The two training loops that benchmarks/train_speed.py races: the TensorFlow DCGAN tutorial's,
copied from tensorflow.org/tutorials/generative/dcgan, and runegen's real `Run.train`. Each
trains one epoch per `one_epoch()` call and returns its images/s; `sampler` and `codes` are what
the scorer draws from."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np

TUTORIAL_BATCH = 256


class TutorialLoop:
    """The tutorial's own loop, unchanged but for timing and a fixed seed."""

    def __init__(self, images: np.ndarray, seed: int = 0):
        import keras
        import tensorflow as tf

        from runegen.training.nets import s1_discriminator, s1_generator
        from runegen.training.tf_settings import without_autotune

        keras.utils.set_random_seed(seed)
        self.generator, discriminator = s1_generator(), s1_discriminator()
        generator = self.generator
        cross_entropy = tf.keras.losses.BinaryCrossentropy(from_logits=True)
        self.generator_optimizer = generator_optimizer = tf.keras.optimizers.Adam(1e-4)
        discriminator_optimizer = tf.keras.optimizers.Adam(1e-4)
        # Without tf.data's autotuner, as runegen's own loop: its thread held epochs to exactly
        # 20.48, 40.96 or 81.92 s, whatever the loop (runegen/training/run.py).
        self.dataset = without_autotune(
            tf.data.Dataset.from_tensor_slices(images).shuffle(len(images), seed=seed).batch(TUTORIAL_BATCH))

        @tf.function
        def train_step(images):
            noise = tf.random.normal([TUTORIAL_BATCH, 100])
            with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
                generated_images = generator(noise, training=True)
                real_output = discriminator(images, training=True)
                fake_output = discriminator(generated_images, training=True)
                gen_loss = cross_entropy(tf.ones_like(fake_output), fake_output)
                disc_loss = (cross_entropy(tf.ones_like(real_output), real_output)
                             + cross_entropy(tf.zeros_like(fake_output), fake_output))
            gradients_of_generator = gen_tape.gradient(gen_loss, generator.trainable_variables)
            gradients_of_discriminator = disc_tape.gradient(disc_loss, discriminator.trainable_variables)
            generator_optimizer.apply_gradients(zip(gradients_of_generator, generator.trainable_variables))
            discriminator_optimizer.apply_gradients(
                zip(gradients_of_discriminator, discriminator.trainable_variables))

        self.train_step = train_step
        self.codes = 0

    def one_epoch(self) -> float:
        """Train one epoch; its images/s."""
        start, seen = time.perf_counter(), 0
        for image_batch in self.dataset:
            self.train_step(image_batch)
            seen += int(image_batch.shape[0])
        self.generator_optimizer.iterations.numpy()  # wait for the last step
        return seen / (time.perf_counter() - start)

    @property
    def sampler(self):
        return self.generator

    code_weights = None  # no latent codes


class _NoProgress:
    def add_task(self, *args, **kwargs):
        return 0

    def update(self, *args, **kwargs):
        pass


class RunegenLoop:
    """runegen's real loop with its default config (one epoch per call)."""

    def __init__(self, dataset, folder: Path, **changes):
        from runegen.training.config import TrainConfig
        from runegen.training.run import Run

        config = TrainConfig(eval_every=0, checkpoint_every=10_000, **changes)
        self.epochs = config.epochs
        # Built for the whole run (the rates' schedule is set by its length), then trained an
        # epoch per call: `Run.train` trains up to config.epochs.
        self.run = Run(config, folder, dataset)
        self.run.config.epochs = 0
        (folder / "samples").mkdir(parents=True)
        self.codes = self.run.codes
        self.batch_size = config.batch_size

    def one_epoch(self) -> float:
        self.run.config.epochs += 1
        self.run.train(_NoProgress())
        with open(self.run.out / "metrics.csv", newline="") as f:
            return float(list(csv.DictReader(f))[-1]["images_per_s"])

    @property
    def sampler(self):
        return self.run.gan.sampler

    @property
    def code_weights(self):
        return self.run.code_weights()
