"""The two DCGANs of the seed documents, as named presets (latent size 100 by default).

- `s1`: seed 000 (the rune GAN), identical to TensorFlow's DCGAN tutorial.
- `s2`: seed 001 (the MNIST DCGAN of "GANs in Action", chapter 4).

Both discriminators return logits; the loss applies the sigmoid (from_logits=True), which is the
numerically stable form of seed 001's sigmoid output. `dtype` is a Keras dtype policy such as
"mixed_bfloat16"; the discriminator's last layer always computes in float32 so the loss does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from runegen.quiet import import_tensorflow

import_tensorflow()

import keras  # noqa: E402
from keras import layers  # noqa: E402

LATENT_DIM = 100


def s1_generator(latent_dim: int = LATENT_DIM, dtype: str | None = None) -> keras.Model:
    return keras.Sequential([
        keras.Input((latent_dim,)),
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


def s1_discriminator(dtype: str | None = None) -> keras.Model:
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Conv2D(64, 5, strides=2, padding="same", dtype=dtype),
        layers.LeakyReLU(dtype=dtype),
        layers.Dropout(0.3, dtype=dtype),
        layers.Conv2D(128, 5, strides=2, padding="same", dtype=dtype),
        layers.LeakyReLU(dtype=dtype),
        layers.Dropout(0.3, dtype=dtype),
        layers.Flatten(dtype=dtype),
        layers.Dense(1, dtype="float32"),
    ], name="discriminator_s1")


def s2_generator(latent_dim: int = LATENT_DIM, dtype: str | None = None) -> keras.Model:
    return keras.Sequential([
        keras.Input((latent_dim,)),
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


def s2_discriminator(dtype: str | None = None) -> keras.Model:
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Conv2D(32, 3, strides=2, padding="same", dtype=dtype),  # 14x14x32
        layers.LeakyReLU(0.01, dtype=dtype),
        layers.Conv2D(64, 3, strides=2, padding="same", dtype=dtype),  # 7x7x64
        layers.BatchNormalization(dtype=dtype),
        layers.LeakyReLU(0.01, dtype=dtype),
        layers.Conv2D(128, 3, strides=2, padding="valid", dtype=dtype),  # 3x3x128, as the seed says
        layers.BatchNormalization(dtype=dtype),
        layers.LeakyReLU(0.01, dtype=dtype),
        layers.Flatten(dtype=dtype),
        layers.Dense(1, dtype="float32"),
    ], name="discriminator_s2")


@dataclass(frozen=True)
class Preset:
    name: str
    source: str
    generator: Callable[..., keras.Model]
    discriminator: Callable[..., keras.Model]


PRESETS = {
    "s1": Preset("s1", "seed 000 (rune GAN) = TensorFlow DCGAN tutorial", s1_generator, s1_discriminator),
    "s2": Preset("s2", "seed 001 (MNIST DCGAN, GANs in Action ch. 4)", s2_generator, s2_discriminator),
}
