"""Keras models on TensorFlow: the only loader that imports it, lazily, inside `load`.

(Named keras_model, not keras, so it can never stand in for the real `keras` package.)
"""

from __future__ import annotations

import os
import sys
import zipfile
from pathlib import Path

import numpy as np

from runegen.core.errors import DeviceError, ModelFileError, reason
from runegen.core.latents import CODE_WEIGHTS_FILE
from runegen.runtime.generator import Generator, weights_digest
from runegen.runtime.loading import generator_latent_dim, json_beside, not_a_generator

# --device -> TensorFlow device.
_DEVICES = {"cpu": "/CPU:0", "cuda": "/GPU:0", "gpu": "/GPU:0"}


def load(path: Path, threads: int, device: str) -> Generator:
    tf_device = _DEVICES.get(device.lower())
    if tf_device is None:
        raise DeviceError(f"{path}: .keras models run on {', '.join(_DEVICES)} only, got {device!r}")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path} is not a valid Keras model (not a .keras zip archive)")
    if "tensorflow" not in sys.modules:  # threads can only be set before TensorFlow starts
        os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(threads))
        os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
    try:
        from runegen.core.quiet import import_tensorflow

        tf = import_tensorflow()
        import keras
    except ImportError:  # (a Ctrl-C while it loaded is Stopped, from import_tensorflow)
        raise DeviceError(f"{path}: .keras models need TensorFlow: pip install 'runegen[train]' "
                         "(an .onnx or .tflite export of it runs without)") from None
    if tf_device == "/GPU:0" and not tf.config.list_physical_devices("GPU"):
        raise DeviceError(f"device {device!r}: TensorFlow sees no GPU here (available: cpu)")
    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as error:
        raise ModelFileError(f"{path} is not a valid Keras model ({reason(error)})") from None

    in_shapes, out_shapes = _shapes(model, "input"), _shapes(model, "output")
    latent_dim = generator_latent_dim(in_shapes, out_shapes)
    if not latent_dim:
        raise not_a_generator(path, in_shapes, out_shapes)

    # A training run folder holds config.json (preset, latent_dim, ...), classes.json and, trained
    # with a code prior, code_weights.json.
    metadata = json_beside(path, "config.json", dict) or {}
    metadata["classes"] = json_beside(path, "classes.json", list) or []
    code_weights = json_beside(path, CODE_WEIGHTS_FILE, list)
    if code_weights is not None:
        metadata["code_weights"] = code_weights
    metadata["weights_digest"] = weights_digest(model.get_weights())  # what its exports will carry

    def run(z: np.ndarray) -> np.ndarray:
        with tf.device(tf_device):
            return np.asarray(model(z, training=False), dtype=np.float32)

    return Generator(path, "keras", latent_dim, metadata, run, device=device.lower(), threads=threads, model=model)


def _shapes(model, which: str) -> list:
    """A Keras model's input or output shapes as a list of tuples (empty if it has none)."""
    try:
        shape = getattr(model, f"{which}_shape")
    except (AttributeError, ValueError, RuntimeError):
        return []
    if isinstance(shape, tuple) and (not shape or not isinstance(shape[0], (tuple, list))):
        return [tuple(shape)]
    return [tuple(s) for s in shape]
