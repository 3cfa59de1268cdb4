"""TFLite models on LiteRT (or tflite-runtime on 32-bit Raspberry Pi OS), CPU only.

int8 input/output tensors are quantised and dequantised here, so every model takes and returns
float32. TFLite has no string metadata readable without TensorFlow: the exporter's keys are in a
JSON sidecar `<model>.json`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from runegen.core.errors import DeviceError, ModelFileError, reason
from runegen.core.formats import SIDECAR
from runegen.core.signals import stop_if_heard
from runegen.runtime.generator import Generator
from runegen.runtime.loading import generator_latent_dim, in_chunks, json_beside, not_a_generator


def load(path: Path, threads: int, device: str, xnnpack: bool = True) -> Generator:
    from runegen.core.quiet import quiet_native_stderr  # LiteRT prints "INFO: Created ... XNNPACK delegate"

    if device.lower() != "cpu":
        raise DeviceError(f"{path}: TFLite models run on the CPU only (device 'cpu'), got {device!r}")
    Interpreter = _interpreter_class(path)
    try:
        with quiet_native_stderr():
            interpreter = Interpreter(model_path=str(path), num_threads=threads,
                                      **({} if xnnpack else _without_xnnpack(Interpreter)))
            interpreter.allocate_tensors()
    except Exception as error:  # ValueError "not a valid Flatbuffer buffer", RuntimeError, ...
        raise ModelFileError(f"{path} is not a valid TFLite model ({reason(error)})") from None

    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    in_shapes, out_shapes = [_signature(d) for d in inputs], [_signature(d) for d in outputs]
    latent_dim = generator_latent_dim(in_shapes, out_shapes[:1])
    if not latent_dim:
        raise not_a_generator(path, in_shapes, out_shapes)
    for detail in (inputs[0], outputs[0]):
        dtype = np.dtype(detail["dtype"])
        if dtype.kind not in "fiu" or (dtype.kind in "iu" and not detail["quantization"][0]):
            raise ModelFileError(f"{path} is not a runegen generator (tensor {detail['name']!r} is "
                             f"{dtype.name} without quantisation parameters)")

    runner = _Runner(interpreter, inputs[0], outputs[0])
    metadata = json_beside(path, SIDECAR, dict) or {}  # the sidecar: LiteRT reads none from the file
    return Generator(path, "tflite", latent_dim, metadata, runner, device="cpu", threads=threads, model=interpreter)


def _interpreter_class(path: Path):
    try:
        from ai_edge_litert.interpreter import Interpreter
        return Interpreter
    except ImportError:
        stop_if_heard()  # a Ctrl-C while it loaded, not its absence
    try:  # the last tflite-runtime (2.14) needs numpy<2 and fails in odd ways otherwise
        from tflite_runtime.interpreter import Interpreter
        return Interpreter
    except Exception:
        stop_if_heard()
        raise DeviceError(f"{path}: .tflite models need LiteRT: pip install ai-edge-litert "
                         "(tflite-runtime with numpy<2 on 32-bit Raspberry Pi OS)") from None


def _without_xnnpack(Interpreter) -> dict:
    """LiteRT applies its XNNPACK delegate by default; this op resolver leaves it out."""
    resolver = sys.modules[Interpreter.__module__].OpResolverType
    return {"experimental_op_resolver_type": resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES}


def _signature(detail: dict) -> list:
    """A tensor's shape with -1 where it may be resized."""
    return list(detail.get("shape_signature", detail["shape"]))


class _Runner:
    """Feeds a LiteRT interpreter: resizes the batch when it changes, (de)quantises int8 I/O."""

    def __init__(self, interpreter, input_detail: dict, output_detail: dict):
        self.interpreter = interpreter
        self.input_index = input_detail["index"]
        self.output_index = output_detail["index"]
        self.input_dtype = np.dtype(input_detail["dtype"])
        self.output_dtype = np.dtype(output_detail["dtype"])
        self.input_quant = input_detail["quantization"]  # (scale, zero_point); (0.0, 0) for float
        self.output_quant = output_detail["quantization"]
        self.batch = int(input_detail["shape"][0])
        signature = _signature(input_detail)
        self.fixed_batch = None if signature and int(signature[0]) == -1 else self.batch

    def __call__(self, z: np.ndarray) -> np.ndarray:
        return in_chunks(self._once, z, self.fixed_batch)

    def _once(self, z: np.ndarray) -> np.ndarray:
        if len(z) != self.batch:
            self.interpreter.resize_tensor_input(self.input_index, list(z.shape))
            self.interpreter.allocate_tensors()
            self.batch = len(z)
        self.interpreter.set_tensor(self.input_index, self._quantise(z))
        self.interpreter.invoke()
        return self._dequantise(self.interpreter.get_tensor(self.output_index))

    def _quantise(self, z: np.ndarray) -> np.ndarray:
        if self.input_dtype.kind == "f":
            return z.astype(self.input_dtype, copy=False)
        scale, zero_point = self.input_quant
        info = np.iinfo(self.input_dtype)
        return np.clip(np.rint(z / scale + zero_point), info.min, info.max).astype(self.input_dtype)

    def _dequantise(self, images: np.ndarray) -> np.ndarray:
        if self.output_dtype.kind == "f":
            return images.astype(np.float32, copy=False)
        scale, zero_point = self.output_quant
        return (images.astype(np.float32) - zero_point) * np.float32(scale)
