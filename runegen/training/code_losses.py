"""The loss terms of the latent codes (runegen/training/gan.py says what each is for), per example.

Each takes plain tensors and returns one value per example, unweighted: the GAN step weighs them
with its config and averages over the global batch, so a replica's share adds up as for any loss.
"""

from __future__ import annotations

import keras
import tensorflow as tf


def info_loss(q, inputs, codes, num_codes: int, continuous: int, noise_width: int,
              continuous_weight: float = 1.0):
    """Q's error on the fakes' codes: cross-entropy on the categorical code (`codes`, integers),
    plus `continuous_weight` times half the squared error on the `continuous` Gaussian columns just
    before the one-hot (the Gaussian log-likelihood with unit variance, a weight w reading as
    variance 1/w); G and D both minimise it."""
    loss = (keras.losses.sparse_categorical_crossentropy(codes, q[:, :num_codes], from_logits=True)
            if num_codes else tf.zeros([tf.shape(inputs)[0]]))
    if continuous:
        targets = inputs[:, noise_width - continuous:noise_width]
        loss += continuous_weight * 0.5 * tf.reduce_sum(tf.square(q[:, num_codes:] - targets), axis=1)
    return loss


def balance_loss(real_code_logits, num_codes: int):
    """How far Q's readings of a batch of real images are from being confident and spread evenly
    over the codes: log(codes) - H(mean p) + mean H(p), p the softmax of Q's code logits; 0 when
    each image reads as one code and every code is read equally often (IMSAT's clustering
    objective, Hu et al. 2017). Minimised by D, it makes each code's cluster of real glyphs an
    equal share of the data, so that codes drawn uniformly draw every kind of glyph as often as the
    data has it.

    The same value for every example of a replica (the step averages over the global batch, so
    the replicas' shares add up to the objective). Under tf.distribute the mean p is all-reduced
    over the replicas (its gradient too): several devices compute the global batch's spread, not
    each its own slice's."""
    p = tf.nn.softmax(tf.cast(real_code_logits[:, :num_codes], tf.float32))
    context = tf.distribute.get_replica_context()
    if context is not None and context.num_replicas_in_sync > 1:
        totals = context.all_reduce(tf.distribute.ReduceOp.SUM, tf.concat(
            [tf.reduce_sum(p, axis=0), [tf.cast(tf.shape(p)[0], tf.float32)]], axis=0))
        share = totals[:num_codes] / totals[num_codes]
    else:
        share = tf.reduce_mean(p, axis=0)
    spread = tf.math.log(float(num_codes)) + tf.reduce_sum(share * tf.math.log(share + 1e-8))
    doubt = -tf.reduce_mean(tf.reduce_sum(p * tf.math.log(p + 1e-8), axis=1))
    return tf.fill([tf.shape(p)[0]], spread + doubt)


def invariance_loss(real_code_logits, shifted_code_logits, num_codes: int):
    """Q's cross-entropy on slightly shifted real glyphs against its own reading of the unshifted
    ones (held fixed): IMSAT's self-augmented training (Hu et al. 2017). Without it, Q's clusters
    of real glyphs follow where a glyph sits as much as what it is (a 1-pixel shift changed the
    code read for 59% of real runes in a trained run, docs/ablation.md): codes then draw mixtures
    of runes, which G resolves by drawing the likeliest, so some runes come out too rarely."""
    target = tf.stop_gradient(tf.nn.softmax(tf.cast(real_code_logits[:, :num_codes], tf.float32)))
    return keras.losses.categorical_crossentropy(
        target, tf.cast(shifted_code_logits[:, :num_codes], tf.float32), from_logits=True)


def mode_seeking_loss(inputs, fake_images, noise_width: int, target: float):
    """For latents drawn in pairs (2k, 2k + 1) with one code and different noise: how far each
    pair's images differ less than `target` per unit of noise distance (mean absolute
    differences), relative to it, for both examples of the pair. A bounded form of MSGAN's term
    (Mao et al. 2019; DSGAN, Yang et al. 2019): different noise must draw different images, up to
    real glyphs' own variety and no further."""
    images = tf.reshape(tf.cast(fake_images, tf.float32), [-1, 2, tf.reduce_prod(tf.shape(fake_images)[1:])])
    z = tf.reshape(inputs[:, :noise_width], [-1, 2, noise_width])
    ratio = (tf.reduce_mean(tf.abs(images[:, 0] - images[:, 1]), axis=1)
             / tf.reduce_mean(tf.abs(z[:, 0] - z[:, 1]), axis=1))
    return tf.repeat(tf.nn.relu(1.0 - ratio / target), 2)
