"""The adversarial terms of the GAN step (runegen/training/gan.py), per example.

Two objectives:
- "bce": the DCGAN tutorial's binary cross-entropy, real = 1, fake = 0 (non-saturating for G),
  with optional one-sided label smoothing (D's target for real images 1 - s; Salimans et al. 2016).
- "hinge": D minimises relu(1 - D(x)) + relu(1 + D(G(z))), G maximises D(G(z)) (Lim & Ye 2017;
  SN-GAN and BigGAN's choice).

And one regulariser of D, `r1_penalty`: the squared gradient of D's logit with respect to its
real inputs (Mescheder et al. 2018), which keeps D from carving sharp ridges around the real
glyphs that G can only reach by collapsing onto them.
"""

from __future__ import annotations

import keras
import tensorflow as tf


def generator_loss(objective: str, fake_logits):
    if objective == "hinge":
        return -fake_logits[:, 0]
    return keras.losses.binary_crossentropy(tf.ones_like(fake_logits), fake_logits, from_logits=True)


def discriminator_loss(objective: str, real_logits, fake_logits, label_smoothing: float = 0.0):
    if objective == "hinge":
        return tf.nn.relu(1.0 - real_logits[:, 0]) + tf.nn.relu(1.0 + fake_logits[:, 0])
    real_target = tf.fill(tf.shape(real_logits), 1.0 - label_smoothing)
    return (keras.losses.binary_crossentropy(real_target, real_logits, from_logits=True)
            + keras.losses.binary_crossentropy(tf.zeros_like(fake_logits), fake_logits, from_logits=True))


def r1_penalty(logits_of, real_images):
    """Per example: the squared norm of d(logit)/d(image) at each real image, `logits_of` being D
    on a batch of images. Differentiable itself (a tape inside the caller's tape), in float32
    whatever D's compute dtype."""
    with tf.GradientTape() as tape:
        tape.watch(real_images)
        total = tf.reduce_sum(tf.cast(logits_of(real_images)[:, 0], tf.float32))
    gradients = tf.cast(tape.gradient(total, real_images), tf.float32)
    return tf.reduce_sum(tf.square(gradients), axis=[1, 2, 3])
