"""The two DCGANs of the seed documents, as named presets (latent size 100 by default).

- `s1`: seed 000 (the rune GAN), identical to TensorFlow's DCGAN tutorial.
- `s2`: seed 001 (the MNIST DCGAN of "GANs in Action", chapter 4).

Both discriminators return logits; the loss applies the sigmoid (from_logits=True), which is the
numerically stable form of seed 001's sigmoid output. `dtype` is a Keras dtype policy such as
"mixed_bfloat16"; the discriminator's last layer always computes in float32 so the loss does.

The discriminator's shape is a preset detail, the generator's is the seed's promise: with
`spectral_norm=True` the preset's convolutions and its logit's Dense layer are spectrally normalised
(Miyato et al. 2018, runegen/training/spectral.py) and s1's Dropout is left out, as in SN-GAN's own
recipe; s2's D has BatchNorm and no Dropout either way. Layers added on top stay plain: the Q head
(`info_discriminator`, the InfoGAN head; runegen/training/gan.py says why) and the projection
embeddings.

Class-conditional pairs (`num_classes` > 0, see runegen/training/gan.py) come from the same presets:
`generator(latent_dim, dtype, num_classes)` widens the input to latent + one-hot, and
`conditional_discriminator` turns a preset's discriminator into a projection discriminator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from runegen.core.quiet import import_tensorflow

import_tensorflow()

import keras  # noqa: E402
from keras import layers, ops  # noqa: E402

from runegen.training.config import LATENT_DIM  # noqa: E402
from runegen.training.spectral import MinibatchStd, SpectralConv2D, SpectralDense  # noqa: E402


def s1_generator(latent_dim: int = LATENT_DIM, dtype: str | None = None,
                 num_classes: int = 0) -> keras.Model:
    return keras.Sequential([
        keras.Input((latent_dim + num_classes,)),
        layers.Dense(7 * 7 * 256, use_bias=False, dtype=dtype),
        layers.BatchNormalization(dtype=dtype),
        layers.LeakyReLU(dtype=dtype),
        layers.Reshape((7, 7, 256), dtype=dtype),
        layers.Conv2DTranspose(128, 5, strides=1, padding="same", use_bias=False, dtype=dtype),
        layers.BatchNormalization(dtype=dtype),
        layers.LeakyReLU(dtype=dtype),
        layers.Conv2DTranspose(64, 5, strides=2, padding="same", use_bias=False, dtype=dtype),
        layers.BatchNormalization(dtype=dtype),
        layers.LeakyReLU(dtype=dtype),
        layers.Conv2DTranspose(1, 5, strides=2, padding="same", use_bias=False, activation="tanh",
                               dtype=dtype),
    ], name="generator_s1")


def _d_layers(spectral_norm: bool):
    """(Conv2D, Dense, dropout list maker) for a discriminator, spectrally normalised or not."""
    if spectral_norm:
        return SpectralConv2D, SpectralDense, lambda rate, dtype: []
    return layers.Conv2D, layers.Dense, lambda rate, dtype: [layers.Dropout(rate, dtype=dtype)]


def _width(channels: int, width: float) -> int:
    """A D layer's channels at `width` times the preset's."""
    return max(1, round(channels * width))


def s1_discriminator(dtype: str | None = None, spectral_norm: bool = False,
                     minibatch_std: bool = False, width: float = 1.0, kernel: int = 0) -> keras.Model:
    conv, dense, dropout = _d_layers(spectral_norm)
    kernel = kernel or 5
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        conv(_width(64, width), kernel, strides=2, padding="same", dtype=dtype),
        layers.LeakyReLU(dtype=dtype),
        *dropout(0.3, dtype),
        conv(_width(128, width), kernel, strides=2, padding="same", dtype=dtype),
        layers.LeakyReLU(dtype=dtype),
        *dropout(0.3, dtype),
        *([MinibatchStd(dtype=dtype)] if minibatch_std else []),
        layers.Flatten(dtype=dtype),
        dense(1, dtype="float32"),
    ], name="discriminator_s1")


def s2_generator(latent_dim: int = LATENT_DIM, dtype: str | None = None,
                 num_classes: int = 0) -> keras.Model:
    return keras.Sequential([
        keras.Input((latent_dim + num_classes,)),
        layers.Dense(7 * 7 * 256, dtype=dtype),
        layers.Reshape((7, 7, 256), dtype=dtype),
        layers.Conv2DTranspose(128, 3, strides=2, padding="same", dtype=dtype),  # 14x14x128
        layers.BatchNormalization(dtype=dtype),
        layers.LeakyReLU(0.01, dtype=dtype),
        layers.Conv2DTranspose(64, 3, strides=1, padding="same", dtype=dtype),  # 14x14x64
        layers.BatchNormalization(dtype=dtype),
        layers.LeakyReLU(0.01, dtype=dtype),
        layers.Conv2DTranspose(1, 3, strides=2, padding="same", activation="tanh", dtype=dtype),
    ], name="generator_s2")


def s2_discriminator(dtype: str | None = None, spectral_norm: bool = False,
                     minibatch_std: bool = False, width: float = 1.0, kernel: int = 0) -> keras.Model:
    conv, dense, _ = _d_layers(spectral_norm)
    kernel = kernel or 3
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        conv(_width(32, width), kernel, strides=2, padding="same", dtype=dtype),  # 14x14x32
        layers.LeakyReLU(0.01, dtype=dtype),
        conv(_width(64, width), kernel, strides=2, padding="same", dtype=dtype),  # 7x7x64
        layers.BatchNormalization(dtype=dtype),
        layers.LeakyReLU(0.01, dtype=dtype),
        conv(_width(128, width), kernel, strides=2, padding="valid", dtype=dtype),  # 3x3x128 with the seed's 3x3 kernels
        layers.BatchNormalization(dtype=dtype),
        layers.LeakyReLU(0.01, dtype=dtype),
        *([MinibatchStd(dtype=dtype)] if minibatch_std else []),
        layers.Flatten(dtype=dtype),
        dense(1, dtype="float32"),
    ], name="discriminator_s2")


def _features(base: keras.Model, image):
    """phi(x): `image` through every layer of `base` but its last (the Dense 1 that gives the logit)."""
    features = image
    for layer in base.layers[:-1]:
        features = layer(features)
    return features


def conditional_discriminator(base: keras.Model, num_classes: int, dtype: str | None = None) -> keras.Model:
    """Projection discriminator on `base`'s layers: logit = w·phi(x) + b + embed(y)·phi(x), where
    phi(x) is the input of base's last (Dense 1) layer. Inputs: [image, integer label]."""
    image = keras.Input(base.input_shape[1:], name="image")
    label = keras.Input((), dtype="int32", name="label")
    features = _features(base, image)
    logit = _projected(base.layers[-1](features), features, label, num_classes, dtype, "class_embedding")
    return keras.Model([image, label], logit, name=f"{base.name}_projection")


def _projected(logit, features, label, num_classes: int, dtype, name: str):
    """logit + embed(label)·features: the projection discriminator's class term."""
    embedded = layers.Embedding(num_classes, features.shape[-1], dtype=dtype, name=name)(label)
    projection = layers.Dot(axes=1, dtype="float32")([embedded, features])
    return layers.Add(dtype="float32")([logit, projection])


def info_discriminator(base: keras.Model, codes: int, continuous: int = 0,
                       self_conditioned: bool = False) -> keras.Model:
    """`base` with an InfoGAN Q head: outputs [logit, Q], Q a Dense layer on the same features
    phi(x) that give the logit (so Q costs D almost nothing): `codes` logits of the categorical code,
    then `continuous` estimates of the continuous codes.

    `self_conditioned`: inputs [image, code]; the logit gains a projection term embed(code)·phi(x)
    (as conditional_discriminator's), where a code < 0 stands for Q's own reading of the image:
    fakes are judged against their code, real images against the code Q reads in them, so each
    code must match the real glyphs of its cluster as a whole, not only be readable."""
    image = keras.Input(base.input_shape[1:], name="image")
    features = _features(base, image)
    q = layers.Dense(codes + continuous, dtype="float32", name="q_head")(features)
    logit = base.layers[-1](features)
    if not self_conditioned:
        return keras.Model(image, [logit, q], name=f"{base.name}_info")
    code = keras.Input((), dtype="int32", name="code")
    logit = _projected(logit, features, QReading(codes)([code, q]), codes, None, "code_embedding")
    return keras.Model([image, code], [logit, q], name=f"{base.name}_self_conditioned")


@keras.saving.register_keras_serializable("runegen")
class QReading(layers.Layer):
    """[code, Q logits] -> the code where it is >= 0, else the categorical code Q reads (argmax of its
    first `codes` logits, no gradient)."""

    def __init__(self, codes: int, **kwargs):
        super().__init__(**kwargs)
        self.codes = codes

    def call(self, inputs):
        code, q = inputs
        read = ops.cast(ops.argmax(ops.stop_gradient(q[:, :self.codes]), axis=1), "int32")
        return ops.where(code >= 0, ops.cast(code, "int32"), read)

    def get_config(self):
        return {**super().get_config(), "codes": self.codes}


@dataclass(frozen=True)
class Preset:
    name: str
    source: str
    generator: Callable[..., keras.Model]
    discriminator: Callable[..., keras.Model]

    def pair(self, latent_dim: int, num_classes: int = 0, dtype: str | None = None,
             spectral_norm: bool = False, codes: int = 0, minibatch_std: bool = False,
             continuous: int = 0, self_conditioned: bool = False, d_width: float = 1.0, d_kernel: int = 0):
        """(generator, discriminator): class-conditional when num_classes > 0, else with a Q head
        for `codes` categorical and `continuous` continuous latent codes when there are any (the
        generator's input width stays latent_dim); D's channels are `d_width` times the preset's,
        its convolutions' kernels `d_kernel` wide (0: the preset's)."""
        generator = self.generator(latent_dim, dtype=dtype, num_classes=num_classes)
        discriminator = self.discriminator(dtype=dtype, spectral_norm=spectral_norm, minibatch_std=minibatch_std,
                                           width=d_width, kernel=d_kernel)
        if num_classes:
            discriminator = conditional_discriminator(discriminator, num_classes, dtype)
        elif codes or continuous:
            discriminator = info_discriminator(discriminator, codes, continuous, self_conditioned and codes > 0)
        return generator, discriminator

    def pair_for(self, config, num_classes: int = 0, dtype: str | None = None):
        """The pair a TrainConfig asks for: its codes (none when conditional), D's settings, width and kernels."""
        return self.pair(config.latent_dim, num_classes, dtype, config.spectral_norm, config.latent_codes,
                         config.minibatch_std, config.latent_continuous_codes, config.self_conditioning,
                         config.d_width, config.d_kernel)


PRESETS = {
    "s1": Preset("s1", "seed 000 (rune GAN) = TensorFlow DCGAN tutorial", s1_generator, s1_discriminator),
    "s2": Preset("s2", "seed 001 (MNIST DCGAN, GANs in Action ch. 4)", s2_generator, s2_discriminator),
}
