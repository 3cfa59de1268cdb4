"""The DCGAN algorithm in one place: binary cross-entropy, real = 1, fake = 0, Adam.

Two update schemes, as the seeds describe them:
- simultaneous (seed 000 = TensorFlow's DCGAN tutorial): one generator pass feeds both losses,
  two tapes, both networks step together. Cheaper: one forward pass of G per step.
- alternating (seed 001, section 1-4): a discriminator step with G fixed, then fresh fakes for a
  generator step with D fixed.
"""

from __future__ import annotations

import keras
import tensorflow as tf

UPDATE_SCHEMES = ("simultaneous", "alternating")


class DCGAN(tf.Module):
    def __init__(self, generator: keras.Model, discriminator: keras.Model, latent_dim: int,
                 lr_g: float, lr_d: float, beta_1: float, seed: int, update: str):
        super().__init__(name="dcgan")
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = latent_dim
        self.g_optimizer = keras.optimizers.Adam(lr_g, beta_1=beta_1)
        self.d_optimizer = keras.optimizers.Adam(lr_d, beta_1=beta_1)
        # Built now so a checkpoint can restore their slots before the first step.
        self.g_optimizer.build(generator.trainable_variables)
        self.d_optimizer.build(discriminator.trainable_variables)
        # A stateful generator (not tf.random.normal) so its state is checkpointed: a resumed run
        # draws exactly the noise the uninterrupted run would have drawn.
        self.noise = tf.random.Generator.from_seed(seed)
        self.bce = keras.losses.BinaryCrossentropy(from_logits=True)
        steps = {"simultaneous": self._simultaneous_step, "alternating": self._alternating_step}
        self.train_step = tf.function(steps[update])

    def _latents(self, batch_size):
        return self.noise.normal([batch_size, self.latent_dim])

    def _generator_loss(self, fake_logits):
        return self.bce(tf.ones_like(fake_logits), fake_logits)

    def _discriminator_loss(self, real_logits, fake_logits):
        return (self.bce(tf.ones_like(real_logits), real_logits)
                + self.bce(tf.zeros_like(fake_logits), fake_logits))

    @staticmethod
    def _apply(optimizer, tape, loss, model):
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables),
                                      model.trainable_variables))

    def _simultaneous_step(self, real_images):
        latents = self._latents(tf.shape(real_images)[0])
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake_images = self.generator(latents, training=True)
            real_logits = self.discriminator(real_images, training=True)
            fake_logits = self.discriminator(fake_images, training=True)
            g_loss = self._generator_loss(fake_logits)
            d_loss = self._discriminator_loss(real_logits, fake_logits)
        self._apply(self.g_optimizer, g_tape, g_loss, self.generator)
        self._apply(self.d_optimizer, d_tape, d_loss, self.discriminator)
        return self._report(g_loss, d_loss, real_logits, fake_logits)

    def _alternating_step(self, real_images):
        batch_size = tf.shape(real_images)[0]
        fake_images = self.generator(self._latents(batch_size), training=True)
        with tf.GradientTape() as d_tape:
            real_logits = self.discriminator(real_images, training=True)
            fake_logits = self.discriminator(fake_images, training=True)
            d_loss = self._discriminator_loss(real_logits, fake_logits)
        self._apply(self.d_optimizer, d_tape, d_loss, self.discriminator)
        with tf.GradientTape() as g_tape:
            fresh_fakes = self.generator(self._latents(batch_size), training=True)
            g_loss = self._generator_loss(self.discriminator(fresh_fakes, training=True))
        self._apply(self.g_optimizer, g_tape, g_loss, self.generator)
        return self._report(g_loss, d_loss, real_logits, fake_logits)

    @staticmethod
    def _report(g_loss, d_loss, real_logits, fake_logits):
        """Losses plus D(x) and D(G(z)): the discriminator's mean belief that each batch is real."""
        return {"g_loss": g_loss, "d_loss": d_loss,
                "d_real": tf.reduce_mean(tf.sigmoid(real_logits)),
                "d_fake": tf.reduce_mean(tf.sigmoid(fake_logits))}
