"""Random image translations for D, differentiable and drawn from a checkpointed tf.random.Generator.

- `diff_augment` (DiffAugment, Zhao et al. 2020): the same random translation and cutout on real
  and fake images before D, so G learns through it.
- `translate`: a small shift on a blank background, for the invariance of Q's reading of real
  glyphs (runegen/training/code_losses.py).

No flips: a mirrored rune is another rune or none."""

from __future__ import annotations

import tensorflow as tf

TRANSLATION, CUTOUT = 1 / 8, 1 / 2  # DiffAugment's defaults: shift up to 1/8 of the side, cut 1/2


def _shifted(plane, rng: tf.random.Generator, shift: int):
    """(n, size, size) planes moved by up to `shift` pixels each way, zero-filled, per image: products
    with shift matrices, so differentiable in `plane`."""
    n, size = tf.shape(plane)[0], plane.shape[1]
    index = tf.range(size)

    def shift_matrices():  # S[b, i, k] = 1 where k = i - d[b]: (S @ x)[i] = x[i - d]
        d = rng.uniform([n], -shift, shift + 1, dtype=tf.int32)
        return tf.cast(tf.equal(index[None, None, :], index[None, :, None] - d[:, None, None]), tf.float32)

    return shift_matrices() @ plane @ tf.transpose(shift_matrices(), [0, 2, 1])


def translate(images, rng: tf.random.Generator, shift: int):
    """Images in [-1, 1] moved by up to `shift` pixels each way, on the blank (-1) background."""
    plane = tf.cast(images, tf.float32)[..., 0] + 1.0
    return (_shifted(plane, rng, shift) - 1.0)[..., None]


def diff_augment(images, rng: tf.random.Generator):
    """Random translation (zero-filled, up to 1/8 of the side) then cutout (a square of half the
    side set to 0), per image, differentiable in `images`: both are masks and shift matrices."""
    images = tf.cast(images, tf.float32)
    size = images.shape[1]
    index = tf.range(size)
    plane = _shifted(images[..., 0], rng, int(size * TRANSLATION))
    n = tf.shape(plane)[0]
    half = int(size * CUTOUT) // 2
    cy = rng.uniform([n, 1, 1], 0, size, dtype=tf.int32)
    cx = rng.uniform([n, 1, 1], 0, size, dtype=tf.int32)
    outside = tf.logical_or(tf.abs(index[None, :, None] - cy) >= half,
                            tf.abs(index[None, None, :] - cx) >= half)
    return (plane * tf.cast(outside, tf.float32))[..., None]
