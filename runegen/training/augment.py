"""Image translations for D, differentiable (products with shift matrices).

- `diff_augment` (DiffAugment, Zhao et al. 2020): the same random translation and cutout on real
  and fake images before D, so G learns through it; drawn from a checkpointed tf.random.Generator.
- `translate`: given shifts on a blank background, for the invariance of Q's reading of real
  glyphs (runegen/training/code_losses.py); the GAN step draws the shifts.

No flips: a mirrored rune is another rune or none."""

from __future__ import annotations

import tensorflow as tf

TRANSLATION, CUTOUT = 1 / 8, 1 / 2  # DiffAugment's defaults: shift up to 1/8 of the side, cut 1/2


def _shifted(plane, down, right):
    """(n, size, size) planes, each moved `down` and `right` pixels (n integers each), zero-filled."""
    index = tf.range(plane.shape[1])

    def shift_matrices(d):  # S[b, i, k] = 1 where k = i - d[b]: (S @ x)[i] = x[i - d]
        return tf.cast(tf.equal(index[None, None, :], index[None, :, None] - d[:, None, None]), tf.float32)

    return shift_matrices(down) @ plane @ tf.transpose(shift_matrices(right), [0, 2, 1])


def translate(images, shifts, ground: float = -1.0):
    """Images in [-1, 1] moved by `shifts` ((n, 2) integers: down, right), the uncovered edge filled
    with `ground`: -1 for light glyphs on black, 1 for dark ink on white (filled with -1, those got
    black bands along two edges)."""
    plane = tf.cast(images, tf.float32)[..., 0] - ground
    return (_shifted(plane, shifts[:, 0], shifts[:, 1]) + ground)[..., None]


def diff_augment(images, rng: tf.random.Generator):
    """Random translation (zero-filled, up to 1/8 of the side) then cutout (a square of half the
    side set to 0), per image, differentiable in `images`: both are masks and shift matrices."""
    images = tf.cast(images, tf.float32)
    n, size = tf.shape(images)[0], images.shape[1]
    index, shift = tf.range(size), int(size * TRANSLATION)
    down = rng.uniform([n], -shift, shift + 1, dtype=tf.int32)
    right = rng.uniform([n], -shift, shift + 1, dtype=tf.int32)
    plane = _shifted(images[..., 0], down, right)
    half = int(size * CUTOUT) // 2
    cy = rng.uniform([n, 1, 1], 0, size, dtype=tf.int32)
    cx = rng.uniform([n, 1, 1], 0, size, dtype=tf.int32)
    outside = tf.logical_or(tf.abs(index[None, :, None] - cy) >= half,
                            tf.abs(index[None, None, :] - cx) >= half)
    return (plane * tf.cast(outside, tf.float32))[..., None]
