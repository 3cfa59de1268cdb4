"""Discriminator layers beyond Keras' own: spectral normalisation (Miyato et al. 2018), W / sigma(W),
and minibatch standard deviation (Karras et al. 2018).

sigma(W), the largest singular value of the kernel seen as a (fan_in, units) matrix, is estimated by
one power-iteration step per training call from a persistent vector `u`. The division happens in the
forward pass, so gradients flow through sigma as in the paper. (Keras' own SpectralNormalization
wrapper instead overwrites the kernel with W / sigma and keeps sigma out of the gradient.) `u` is a
non-trainable weight: checkpoints carry it, so a resumed run continues the same estimate.
"""

from __future__ import annotations

import keras
from keras import layers, ops


class _SpectralNorm:
    """Mixin for a Keras layer with a `_kernel`: adds `u` and uses W / sigma(W) in the forward pass."""

    def build(self, input_shape):
        super().build(input_shape)
        self.u = self.add_weight(shape=(1, self._kernel.shape[-1]), trainable=False, name="sn_u",
                                 initializer=keras.initializers.RandomNormal(0.0, 1.0))

    def normalized_kernel(self, training):
        kernel = ops.convert_to_tensor(self._kernel)
        matrix = ops.reshape(kernel, (-1, kernel.shape[-1]))  # (fan_in, units)
        u = ops.cast(self.u, matrix.dtype)
        v = _unit(ops.matmul(u, ops.transpose(matrix)))
        u = _unit(ops.matmul(v, matrix))
        u, v = ops.stop_gradient(u), ops.stop_gradient(v)
        if training:
            self.u.assign(ops.cast(u, self.u.dtype))
        sigma = ops.sum(ops.matmul(v, matrix) * u)
        return kernel / sigma

    def call(self, inputs, training=None):
        outputs = self.linear(inputs, self.normalized_kernel(training))
        if self.use_bias:
            outputs = ops.add(outputs, self.bias)
        return self.activation(outputs) if self.activation is not None else outputs


def _unit(vector, epsilon=1e-12):
    return vector / (ops.sqrt(ops.sum(vector * vector)) + epsilon)


@keras.saving.register_keras_serializable("runegen")
class SpectralConv2D(_SpectralNorm, layers.Conv2D):
    def linear(self, inputs, kernel):
        return self.convolution_op(inputs, kernel)


@keras.saving.register_keras_serializable("runegen")
class SpectralDense(_SpectralNorm, layers.Dense):
    def linear(self, inputs, kernel):
        return ops.matmul(inputs, kernel)


@keras.saving.register_keras_serializable("runegen")
class MinibatchStd(layers.Layer):
    """Appends one channel: the standard deviation of each feature over the batch, averaged, so D
    sees how varied a batch is and can tell a batch of near-copies from real data's variety."""

    def call(self, inputs):
        mean = ops.mean(inputs, axis=0, keepdims=True)
        spread = ops.mean(ops.sqrt(ops.mean(ops.square(inputs - mean), axis=0) + 1e-8))
        shape = ops.shape(inputs)
        return ops.concatenate([inputs, ops.ones((shape[0], shape[1], shape[2], 1), inputs.dtype) * spread], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] + 1)
