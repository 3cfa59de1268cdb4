"""ONNX models on onnxruntime, on the CPU or an execution provider picked with --device."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from runegen.errors import UsageError
from runegen.runtime import Generator, generator_latent_dim, in_chunks, not_a_generator, short_error

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
_FLOAT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


def load(path: Path, threads: int, device: str, **_options) -> Generator:
    try:
        import onnxruntime as ort
    except ImportError:
        raise UsageError(f"{path}: .onnx models need onnxruntime: pip install onnxruntime") from None

    available = ort.get_available_providers()
    provider = ONNX_PROVIDERS.get(device.lower(), device)
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
        raise UsageError(f"{path} is not a valid ONNX model ({short_error(error)})") from None
    if provider not in session.get_providers():
        raise UsageError(f"{path}: onnxruntime could not start {provider} (running on "
                         f"{', '.join(session.get_providers())}); check the drivers for --device {device}")

    inputs, outputs = session.get_inputs(), session.get_outputs()
    metadata = dict(session.get_modelmeta().custom_metadata_map)
    latent_dim = generator_latent_dim([i.shape for i in inputs], [o.shape for o in outputs[:1]])
    if latent_dim == 0:  # the model leaves the latent size open: trust the exporter's metadata
        latent_dim = int(metadata["latent_dim"]) if str(metadata.get("latent_dim", "")).isdigit() else None
    if not latent_dim or inputs[0].type not in _FLOAT_TYPES:
        raise not_a_generator(path, [i.shape for i in inputs], [o.shape for o in outputs])

    input_name, output_name = inputs[0].name, outputs[0].name
    input_type = _FLOAT_TYPES[inputs[0].type]
    batch = inputs[0].shape[0]
    fixed_batch = batch if isinstance(batch, int) and batch > 0 else None

    def once(z: np.ndarray) -> np.ndarray:
        return session.run([output_name], {input_name: z.astype(input_type, copy=False)})[0]

    return Generator(path, "onnx", latent_dim, metadata, lambda z: in_chunks(once, z, fixed_batch),
                     device=device, threads=threads, model=session)
