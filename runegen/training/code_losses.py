"""The latent codes of the GAN step (runegen/training/gan.py): what each is for, and its loss terms.

Latent codes (`codes` > 0, InfoGAN, Chen et al. 2016): the last `codes` columns of G's input are
the one-hot of a code (drawn uniformly, or by the learned code prior below) instead of Gaussian
noise, and a Q head on D's features must read the code back from the fake image (cross-entropy,
weight `info_weight`, minimised by G and D).
A single Gaussian blob mapped onto 24 disconnected glyph shapes makes blends between them; a
categorical part that must stay recognisable in the image lets G split its output into modes, with
no labels used. G's architecture and input width do not change: only how latents are drawn, which
the export metadata records ("codes") so every runtime draws them the same way.

Self-conditioning (`self_conditioning`, with codes; after Liu et al. 2020, "Diverse image
generation via self-conditioned GANs", with Q as the clusterer): D is a projection discriminator
whose class is the code: a fake is judged against the code it was drawn from, a real image against
the code Q reads in it. A code then has to match the whole cluster of real glyphs Q assigns to it,
variety included, instead of one readable prototype; with no labels used, as with plain codes.

Code invariance (`code_invariance`, with codes): D also minimises Q's cross-entropy on each real
glyph moved by up to gan.INVARIANCE_SHIFT pixels against its own reading of the unmoved glyph
(invariance_loss below). Without it Q's clusters follow where a glyph sits as much as what
it is, so a cluster mixes runes and its code draws the likeliest of them; with it clusters are
purer, but some codes are left with no real glyph at all, which the code prior then stops drawing.

Code prior (`code_prior`, with codes): fake codes are drawn as often as Q reads each code in real
glyphs (a running average over the last hundred steps or so, `DCGAN.code_frequency`) instead of
uniformly, as the self-conditioned GAN draws its clusters; the final frequencies travel with the
generator, so every runtime draws codes the same way. The balance term evens Q's clusters only
roughly (one batch sees each of 60 codes about once); without the prior a code Q reads in 1% of
real glyphs is drawn as often as one it reads in 2.5%.

Continuous codes (`continuous_codes` = K > 0): the K Gaussian columns just before the one-hot are
also read back by Q (a regression: half the squared error, the Gaussian log-likelihood with unit
variance). A categorical code alone lets G ignore the Gaussian part and draw one glyph per code;
codes that must stay readable make G spend them on visible variation (InfoGAN's rotation and
width). They are drawn N(0, 1) like the rest of the noise, so runtimes need not know of them.

Mode seeking (`mode_seeking` > 0): latents come in pairs with the same code and different noise,
and G pays when a pair's images differ less than `mode_seeking_target` per unit of noise distance
(a bounded form of MSGAN's term, Mao et al. 2019).

Each term here takes plain tensors and returns one value per example, unweighted: the GAN step
weighs them with its config and averages over the global batch, so a replica's share adds up as
for any loss.
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
