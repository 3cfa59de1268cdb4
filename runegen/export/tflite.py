"""TFLite export through a SavedModel: f32, f16 weights, dynamic-range, and full integer.

`TFLiteConverter.from_concrete_functions` on a Keras 3 model leaves the weights as unfrozen
resource variables and the file fails at load; `model.export(..., "tf_saved_model")` then
`from_saved_model` works (one SavedModel per export, `prepare`, for every variant). TFLite has
no metadata slot we can fill without the tflite_support package, so each file gets a JSON
sidecar `<file>.json` with the same keys as the ONNX metadata.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from runegen.core.quiet import quiet_native_stderr


def prepare(model, latent_dim: int, scratch: Path) -> Path:
    """The SavedModel every variant converts, written once per export into `scratch`."""
    saved_model = scratch / "saved_model"
    model.export(str(saved_model), format="tf_saved_model", verbose=False)
    return saved_model


# One small function per variant, named in runegen.core.formats: each sets the converter's options.
def _f32(converter, calibration: np.ndarray) -> None:
    pass


def _f16(converter, calibration: np.ndarray) -> None:
    import tensorflow as tf

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]


def _dynamic(converter, calibration: np.ndarray) -> None:
    import tensorflow as tf

    converter.optimizations = [tf.lite.Optimize.DEFAULT]


def _int8(converter, calibration: np.ndarray) -> None:
    """Full integer, calibrated on latent draws (the generator's real inputs, not images)."""
    import tensorflow as tf

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([latent[None]] for latent in calibration)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]


def _int8io(converter, calibration: np.ndarray) -> None:
    """For integer-only accelerators: int8 in, int8 out."""
    import tensorflow as tf

    _int8(converter, calibration)
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8


def _writer(configure):
    def write(saved_model: Path, target: Path, calibration: np.ndarray, metadata: dict[str, str]) -> None:
        import tensorflow as tf

        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
        configure(converter, calibration)
        with quiet_native_stderr():  # the int8 calibrator prints its settings from C++
            target.write_bytes(converter.convert())
    return write


write_f32, write_f16, write_dynamic = _writer(_f32), _writer(_f16), _writer(_dynamic)
write_int8, write_int8io = _writer(_int8), _writer(_int8io)
