"""Run a trained generator without TensorFlow: ONNX (onnxruntime), TFLite (LiteRT), or Keras.

`load_generator(path)` picks the loader from the file suffix (the `LOADERS` table) and returns a
`Generator` whose `generate(latents)` maps float32 latents (n, latent_dim) to float32 images
(n, 28, 28, 1) in [-1, 1], whatever the model's own input/output types are (int8 TFLite models are
quantised and dequantised here). Only the `.keras` loader imports TensorFlow, lazily, inside the
loader; `.onnx` and `.tflite` work on the base install (numpy, onnxruntime, LiteRT).

A file that cannot be used (missing, empty, truncated, not a generator, a device the runtime
lacks) is one `UsageError` with a short reason, never a runtime's traceback.
"""

from __future__ import annotations

import json
import os
import re
import sys
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

from runegen.errors import UsageError

IMAGE_SHAPE = (28, 28, 1)

# --device -> onnxruntime execution provider. A raw provider name is accepted too.
ONNX_PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "dml": "DmlExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "migraphx": "MIGraphXExecutionProvider",
    "qnn": "QNNExecutionProvider",
    "xnnpack": "XnnpackExecutionProvider",
}
# ONNX input element types we can feed float latents to.
_ONNX_FLOAT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}
# --device -> TensorFlow device, for .keras models.
_KERAS_DEVICES = {"cpu": "/CPU:0", "cuda": "/GPU:0", "gpu": "/GPU:0"}


def latents(n: int, latent_dim: int, seed: int) -> np.ndarray:
    """n standard-normal latent vectors, float32 (n, latent_dim); the same for the same seed."""
    return np.random.default_rng(seed).standard_normal((n, latent_dim)).astype(np.float32)


class Generator:
    """One loaded generator. `generate` is the only thing that differs between formats.

    `model` is the runtime's own object: an onnxruntime InferenceSession, a LiteRT Interpreter, or
    the keras.Model (what the exporter converts)."""

    def __init__(self, path: Path, format: str, latent_dim: int, metadata: dict,
                 run: Callable[[np.ndarray], np.ndarray], device: str = "cpu", threads: int | None = None,
                 model=None):
        self.path = path
        self.model = model
        self.format = format
        self.latent_dim = latent_dim
        self.metadata = metadata
        self.device = device
        self.threads = threads
        self._run = run

    def generate(self, latents: np.ndarray) -> np.ndarray:
        """float32 latents (n, latent_dim) -> float32 images (n, 28, 28, 1) in [-1, 1]."""
        z = np.asarray(latents)
        if z.ndim != 2:
            raise UsageError(f"expected latents of shape (n, {self.latent_dim}), got {z.shape}")
        if z.shape[1] != self.latent_dim:
            raise UsageError(f"expected latent size {self.latent_dim}, got {z.shape[1]}")
        if len(z) == 0:
            return np.zeros((0, *IMAGE_SHAPE), np.float32)
        images = np.asarray(self._run(np.ascontiguousarray(z, dtype=np.float32)), dtype=np.float32)
        return images.reshape(len(z), *IMAGE_SHAPE)

    def __repr__(self) -> str:
        return f"Generator({str(self.path)!r}, format={self.format!r}, latent_dim={self.latent_dim})"


def load_generator(path: str | os.PathLike, threads: int | None = None, device: str = "cpu") -> Generator:
    """Load a generator file; the suffix picks the runtime (see `LOADERS`).

    threads: CPU threads for the runtime (default: os.cpu_count()). device: "cpu", or for ONNX an
    onnxruntime accelerator ("cuda", "tensorrt", "openvino", "coreml", "dml", ... or a provider name).
    """
    path = Path(path)
    if not path.exists():
        raise UsageError(f"{path}: no such file")
    if path.is_dir():
        raise UsageError(f"{path} is a folder, not a model file ({_known_suffixes()})")
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        raise UsageError(f"{path}: unknown model format {path.suffix or '(no suffix)'!r} ({_known_suffixes()})")
    try:
        size = path.stat().st_size
    except OSError as error:
        raise UsageError(f"{path}: cannot read ({error.strerror or error})") from None
    if size == 0:
        raise UsageError(f"{path} is empty (0 bytes)")
    if threads is not None and threads < 1:
        raise UsageError(f"threads must be >= 1, got {threads}")
    threads = threads or os.cpu_count() or 1
    return loader(path, threads, (device or "cpu").strip())


def _known_suffixes() -> str:
    return "known: " + ", ".join(LOADERS)


def _short(error: BaseException, limit: int = 160) -> str:
    """A runtime's exception as a short reason: first line, without onnxruntime's code prefix."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    text = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", text)
    text = re.sub(r"^Load model from .* failed:\s*", "", text)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _not_a_generator(path: Path, inputs, outputs) -> UsageError:
    return UsageError(f"{path} is not a runegen generator (input {_shape_text(inputs)}, output "
                      f"{_shape_text(outputs)}; expected input (None, latent), output (None, 28, 28, 1))")


def _shape_text(shapes) -> str:
    shapes = [tuple(None if d in (None, -1) or isinstance(d, str) else int(d) for d in s) for s in shapes]
    return ", ".join(map(str, shapes)) if shapes else "none"


def _generator_shapes(input_shapes, output_shapes) -> int | None:
    """The latent size if the shapes are a generator's ((batch, latent) -> (batch, 28, 28, 1)), else None.

    A latent size the model leaves open (a symbolic dimension) is returned as 0."""
    if len(input_shapes) != 1 or len(output_shapes) != 1:
        return None
    (inp,), (out,) = input_shapes, output_shapes
    if len(inp) != 2 or len(out) != 4 or tuple(out[1:]) != IMAGE_SHAPE:
        return None
    return inp[1] if isinstance(inp[1], (int, np.integer)) and inp[1] > 0 else 0


def _in_chunks(run: Callable[[np.ndarray], np.ndarray], z: np.ndarray, size: int) -> np.ndarray:
    """Run a model whose batch size is fixed at `size` over any number of latents."""
    if len(z) == size:
        return run(z)
    outputs = []
    for start in range(0, len(z), size):
        chunk = z[start:start + size]
        padded = np.concatenate([chunk, np.zeros((size - len(chunk), z.shape[1]), z.dtype)])
        outputs.append(run(padded)[:len(chunk)])
    return np.concatenate(outputs)


# --- ONNX (onnxruntime) -------------------------------------------------------------------------

def _load_onnx(path: Path, threads: int, device: str) -> Generator:
    try:
        import onnxruntime as ort
    except ImportError:
        raise UsageError(f"{path}: .onnx models need onnxruntime: pip install onnxruntime") from None

    available = ort.get_available_providers()
    provider = ONNX_PROVIDERS.get(device.lower(), device if device in available else None)
    if provider not in available:
        names = [name for name, p in ONNX_PROVIDERS.items() if p in available]
        names += [p for p in available if p not in ONNX_PROVIDERS.values()]
        raise UsageError(f"device {device!r} is not available to onnxruntime {ort.__version__} here "
                         f"(available: {', '.join(names)})")
    providers = [provider] if provider == "CPUExecutionProvider" else [provider, "CPUExecutionProvider"]

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: no warnings about node placement on stderr
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as error:  # onnxruntime raises InvalidProtobuf, InvalidArgument, Fail, ...
        raise UsageError(f"{path} is not a valid ONNX model ({_short(error)})") from None
    if provider not in session.get_providers():
        raise UsageError(f"{path}: onnxruntime could not start {provider} (running on "
                         f"{', '.join(session.get_providers())}); check the drivers for --device {device}")

    inputs, outputs = session.get_inputs(), session.get_outputs()
    metadata = dict(session.get_modelmeta().custom_metadata_map)
    latent_dim = _generator_shapes([i.shape for i in inputs], [o.shape for o in outputs[:1]])
    if latent_dim == 0:  # the model leaves the latent size open: trust the exporter's metadata
        latent_dim = int(metadata["latent_dim"]) if str(metadata.get("latent_dim", "")).isdigit() else None
    if not latent_dim or inputs[0].type not in _ONNX_FLOAT_TYPES:
        raise _not_a_generator(path, [i.shape for i in inputs], [o.shape for o in outputs])

    input_name, output_name = inputs[0].name, outputs[0].name
    input_type = _ONNX_FLOAT_TYPES[inputs[0].type]
    fixed_batch = inputs[0].shape[0] if isinstance(inputs[0].shape[0], int) and inputs[0].shape[0] > 0 else None

    def run(z: np.ndarray) -> np.ndarray:
        def once(batch):
            return session.run([output_name], {input_name: batch.astype(input_type, copy=False)})[0]
        return once(z) if fixed_batch is None else _in_chunks(once, z, fixed_batch)

    return Generator(path, "onnx", latent_dim, metadata, run, device=device, threads=threads, model=session)


# --- TFLite (LiteRT, or tflite-runtime on 32-bit Raspberry Pi OS) --------------------------------

def _tflite_interpreter_class(path: Path):
    try:
        from ai_edge_litert.interpreter import Interpreter
        return Interpreter
    except ImportError:
        pass
    try:  # the last tflite-runtime (2.14) needs numpy<2 and fails in odd ways otherwise
        from tflite_runtime.interpreter import Interpreter
        return Interpreter
    except Exception:
        raise UsageError(f"{path}: .tflite models need LiteRT: pip install ai-edge-litert "
                         "(tflite-runtime with numpy<2 on 32-bit Raspberry Pi OS)") from None


def _sidecar_metadata(path: Path) -> dict:
    """`<model>.json` beside a TFLite file (TFLite has no string metadata we can read without TF)."""
    sidecar = path.with_name(path.name + ".json")
    if not sidecar.is_file():
        return {}
    try:
        metadata = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UsageError(f"{sidecar}: not valid JSON metadata ({_short(error)})") from None
    if not isinstance(metadata, dict):
        raise UsageError(f"{sidecar}: metadata must be a JSON object, got {type(metadata).__name__}")
    return metadata


class _TFLiteRunner:
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
        signature = input_detail.get("shape_signature", input_detail["shape"])
        self.resizable = len(signature) > 0 and int(signature[0]) == -1

    def __call__(self, z: np.ndarray) -> np.ndarray:
        return self._once(z) if self.resizable else _in_chunks(self._once, z, self.batch)

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


def _load_tflite(path: Path, threads: int, device: str) -> Generator:
    from runegen.quiet import quiet_native_stderr  # LiteRT prints "INFO: Created ... XNNPACK delegate"

    if device.lower() != "cpu":
        raise UsageError(f"{path}: TFLite models run on the CPU only (device 'cpu'), got {device!r}")
    Interpreter = _tflite_interpreter_class(path)
    try:
        with quiet_native_stderr():
            interpreter = Interpreter(model_path=str(path), num_threads=threads)
            interpreter.allocate_tensors()
    except Exception as error:  # ValueError "not a valid Flatbuffer buffer", RuntimeError, ...
        raise UsageError(f"{path} is not a valid TFLite model ({_short(error)})") from None

    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    in_shapes = [list(d.get("shape_signature", d["shape"])) for d in inputs]
    out_shapes = [list(d.get("shape_signature", d["shape"])) for d in outputs]
    latent_dim = _generator_shapes(in_shapes, out_shapes[:1])
    if not latent_dim:
        raise _not_a_generator(path, in_shapes, out_shapes)
    for detail in (inputs[0], outputs[0]):
        dtype = np.dtype(detail["dtype"])
        if dtype.kind not in "fiu" or (dtype.kind in "iu" and not detail["quantization"][0]):
            raise UsageError(f"{path} is not a runegen generator (tensor {detail['name']!r} is "
                             f"{dtype.name} without quantisation parameters)")

    metadata = _sidecar_metadata(path)
    runner = _TFLiteRunner(interpreter, inputs[0], outputs[0])
    return Generator(path, "tflite", int(latent_dim), metadata, runner, device="cpu", threads=threads,
                     model=interpreter)


# --- Keras (TensorFlow: the only loader that imports it) ----------------------------------------

def _load_keras(path: Path, threads: int, device: str) -> Generator:
    tf_device = _KERAS_DEVICES.get(device.lower())
    if tf_device is None:
        raise UsageError(f"{path}: .keras models run on {', '.join(_KERAS_DEVICES)} only, got {device!r}")
    if not zipfile.is_zipfile(path):
        raise UsageError(f"{path} is not a valid Keras model (not a .keras zip archive)")
    if "tensorflow" not in sys.modules:  # threads can only be set before TensorFlow starts
        os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(threads))
        os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
    try:
        from runegen.quiet import import_tensorflow

        tf = import_tensorflow()
        import keras
    except ImportError:
        raise UsageError(f"{path}: .keras models need TensorFlow: pip install 'runegen[train]' "
                         "(or use the .onnx/.tflite export)") from None
    if tf_device == "/GPU:0" and not tf.config.list_physical_devices("GPU"):
        raise UsageError(f"device {device!r}: TensorFlow sees no GPU here (available: cpu)")
    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as error:
        raise UsageError(f"{path} is not a valid Keras model ({_short(error)})") from None

    in_shapes, out_shapes = _keras_shapes(model, "input"), _keras_shapes(model, "output")
    latent_dim = _generator_shapes(in_shapes, out_shapes)
    if not latent_dim:
        raise _not_a_generator(path, in_shapes, out_shapes)

    # A training run folder holds config.json (preset, latent_dim, ...) and classes.json.
    metadata = _json_beside(path, "config.json", dict) or {}
    metadata["classes"] = _json_beside(path, "classes.json", list) or []

    def run(z: np.ndarray) -> np.ndarray:
        with tf.device(tf_device):
            return np.asarray(model(z, training=False), dtype=np.float32)

    return Generator(path, "keras", int(latent_dim), metadata, run, device=device, threads=threads,
                     model=model)


def _json_beside(path: Path, name: str, kind: type):
    try:
        loaded = json.loads(path.with_name(name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, kind) else None


def _keras_shapes(model, which: str) -> list:
    """A Keras model's input or output shapes as a list of tuples (empty if it has none)."""
    try:
        shape = getattr(model, f"{which}_shape")
    except (AttributeError, ValueError, RuntimeError):
        return []
    if isinstance(shape, tuple) and (not shape or not isinstance(shape[0], (tuple, list))):
        return [tuple(shape)]
    return [tuple(s) for s in shape]


# The formats, as data: file suffix -> loader(path, threads, device) -> Generator.
LOADERS: dict[str, Callable[[Path, int, str], Generator]] = {
    ".onnx": _load_onnx,
    ".tflite": _load_tflite,
    ".keras": _load_keras,
}
