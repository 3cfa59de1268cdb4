"""ONNX models on onnxruntime, on the CPU or an execution provider picked with --device.

On the CPU a call is a plain `session.run`. On an accelerator the latents and images stay in
buffers on the device that are allocated once per batch size and bound to the session (IO
binding), so a call copies the latents in and the images out and nothing else; on CUDA the
session also captures a CUDA graph per batch size (`gpu_graph_id`) and replays it, which removes
the per-kernel launch cost that dominates at small batches. `Generator.resident(batch)` times
that bound run without the host copies: what a server that keeps its data on the GPU sees.
"""

from __future__ import annotations

import ctypes
import json
import os
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

from runegen.core.devices import ONNX_PROVIDERS, available_text, device_name, device_names
from runegen.core.errors import DeviceError, ModelFileError, reason
from runegen.core.quiet import import_onnxruntime
from runegen.runtime.generator import IMAGE_SHAPE, Generator
from runegen.runtime.loading import generator_latent_dim, in_chunks, not_a_generator

# The provider's shared library inside onnxruntime's package, where it ships as one: loading it
# ourselves names the system library it lacks (libnvinfer, libcudnn, ...).
_PROVIDER_LIBRARIES = {"CUDAExecutionProvider": "libonnxruntime_providers_cuda.so",
                       "TensorrtExecutionProvider": "libonnxruntime_providers_tensorrt.so"}
# OrtValue device names for IO binding; other providers bind host buffers.
BIND_DEVICES = {"CUDAExecutionProvider": "cuda", "TensorrtExecutionProvider": "cuda"}
# ONNX input element types we can feed float latents to.
_FLOAT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}
TENSORRT_CACHE = Path(os.environ.get("RUNEGEN_TRT_CACHE", Path.home() / ".cache" / "runegen" / "tensorrt"))


def load(path: Path, threads: int, device: str, cuda_graph: bool = True, io_binding: bool | None = None) -> Generator:
    """io_binding: None = on for accelerators, off on the CPU (True on the CPU runs the same
    bound path through host buffers: how the tests exercise it). cuda_graph: capture and replay
    a CUDA graph per batch size on CUDA (falls back to plain IO binding where it cannot)."""
    ort = _onnxruntime(path)
    provider = provider_for(device, ort)
    session, graphs = _session(ort, path, threads, provider, cuda_graph and provider == "CUDAExecutionProvider")

    inputs, outputs = session.get_inputs(), session.get_outputs()
    try:
        metadata = dict(session.get_modelmeta().custom_metadata_map)
    except UnicodeDecodeError:  # a damaged file: onnxruntime reads its metadata as UTF-8 text
        raise ModelFileError(f"{path} is not a valid ONNX model (its metadata is not UTF-8 text)") from None
    latent_dim = generator_latent_dim([i.shape for i in inputs], [o.shape for o in outputs[:1]])
    if latent_dim == 0:  # the model leaves the latent size open: trust the exporter's metadata
        latent_dim = int(metadata["latent_dim"]) if str(metadata.get("latent_dim", "")).isdigit() else None
    if not latent_dim or inputs[0].type not in _FLOAT_TYPES:
        raise not_a_generator(path, [i.shape for i in inputs], [o.shape for o in outputs])

    batch = inputs[0].shape[0]
    fixed_batch = batch if isinstance(batch, int) and batch > 0 else None
    if io_binding is None:
        io_binding = provider != "CPUExecutionProvider"
    if io_binding:
        runner = BoundRunner(ort, session, BIND_DEVICES.get(provider, "cpu"), latent_dim,
                             _FLOAT_TYPES[inputs[0].type], graphs)
        execution = "IO binding" + (" + CUDA graph" if graphs else "")
    else:
        runner = PlainRunner(session, _FLOAT_TYPES[inputs[0].type])
        execution = "session.run"
    return Generator(path, "onnx", latent_dim, metadata, lambda z: in_chunks(runner, z, fixed_batch),
                     device=device_name(provider), threads=threads, model=session, execution=execution,
                     resident=runner.resident if io_binding and fixed_batch is None else None)


def _onnxruntime(path: Path):
    try:
        ort = import_onnxruntime()
    except ImportError:
        raise DeviceError(f"{path}: .onnx models need onnxruntime: pip install onnxruntime") from None
    return ort


def available_devices() -> list[str]:
    """The --device names of onnxruntime's execution providers here (ImportError without it)."""
    return device_names(import_onnxruntime().get_available_providers())


def provider_for(device: str, ort) -> str:
    """The execution provider for `device`, or a DeviceError naming what is available here."""
    available = ort.get_available_providers()
    wanted = device_name(device)
    provider = ONNX_PROVIDERS.get(wanted) or next((p for p in available if p.lower() == wanted.lower()), None)
    if provider not in available:
        raise DeviceError(f"device {device!r} is not available to onnxruntime {ort.__version__} here "
                          f"(available: {available_text(device_names(available))})")
    return provider


def provider_options(provider: str, cuda_graph: bool = False) -> dict:
    if provider == "CUDAExecutionProvider":
        return {"enable_cuda_graph": "1"} if cuda_graph else {}
    if provider == "TensorrtExecutionProvider":  # fp16 engines, built once and cached
        return {"trt_fp16_enable": "1", "trt_engine_cache_enable": "1",
                "trt_engine_cache_path": str(TENSORRT_CACHE), "trt_timing_cache_enable": "1"}
    return {}


def providers_for(provider: str, cuda_graph: bool = False) -> list:
    """The provider with its options, then the CPU for any node it cannot run."""
    providers = [(provider, provider_options(provider, cuda_graph))]
    return providers if provider == "CPUExecutionProvider" else providers + [("CPUExecutionProvider", {})]


def session_options(ort, threads: int, quiet: bool = False):
    """quiet: fatal errors only (a generator's sessions: runegen reports their failures itself)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 4 if quiet else 3  # 3: errors only, no warnings about node placement
    return options


def _session(ort, path: Path, threads: int, provider: str, cuda_graph: bool):
    """(InferenceSession, whether it captures CUDA graphs). A model with nodes the CUDA provider
    cannot run refuses CUDA graphs at creation: then the session is made again without them."""
    missing = missing_library(ort, provider)
    if missing:  # before onnxruntime tries it and prints its own multi-line complaint
        raise DeviceError(f"{path}: onnxruntime cannot start {provider}: {missing}")
    if provider == "TensorrtExecutionProvider":
        TENSORRT_CACHE.mkdir(parents=True, exist_ok=True)
    try:
        # Fatal logs only: a damaged file's failed Reshape was logged in colour, then raised and
        # reported by runegen as one line; a provider's fallback is checked below, not read in a log.
        session = ort.InferenceSession(str(path), sess_options=session_options(ort, threads, quiet=True),
                                       providers=providers_for(provider, cuda_graph))
    except Exception as error:  # onnxruntime raises InvalidProtobuf, InvalidArgument, Fail, ...
        if cuda_graph:
            return _session(ort, path, threads, provider, cuda_graph=False)
        raise ModelFileError(f"{path} is not a valid ONNX model ({reason(error)})") from None
    if provider not in session.get_providers():
        raise DeviceError(f"{path}: onnxruntime could not start {provider} (check the drivers); "
                         f"it would run on {', '.join(session.get_providers())} instead")
    return session, cuda_graph


def missing_library(ort, provider: str) -> str | None:
    """Why a provider's shared library does not load: the loader's own message, which names the
    missing system library ("libnvinfer.so.10: cannot open shared object file ...")."""
    name = _PROVIDER_LIBRARIES.get(provider)
    if name is None:
        return None
    library = Path(ort.__file__).parent / "capi" / name
    if not library.exists():
        return f"this onnxruntime has no {name}"
    try:
        ctypes.CDLL(str(library))
    except OSError as error:
        return reason(error)
    return None


class PlainRunner:
    def __init__(self, session, input_type):
        self.session, self.input_type = session, input_type
        self.input_name, self.output_name = session.get_inputs()[0].name, session.get_outputs()[0].name

    def __call__(self, z: np.ndarray) -> np.ndarray:
        return self.session.run([self.output_name], {self.input_name: z.astype(self.input_type, copy=False)})[0]


class BoundRunner:
    """IO binding with buffers kept per batch size; on CUDA with graphs, graph id k+1 for the
    k-th batch size (ids are positive; onnxruntime replays a captured id with the shapes it was
    captured with, so an id is never reused for another shape)."""

    CAPTURE_RUNS = 3  # onnxruntime runs a graph id normally before it captures it

    def __init__(self, ort, session, device: str, latent_dim: int, input_type, graphs: bool):
        self.ort, self.session, self.device = ort, session, device
        self.latent_dim, self.input_type, self.graphs = latent_dim, input_type, graphs
        self.input_name, self.output_name = session.get_inputs()[0].name, session.get_outputs()[0].name
        self.bindings: dict[int, tuple] = {}

    def _binding(self, batch: int):
        if batch not in self.bindings:
            ort = self.ort
            z = ort.OrtValue.ortvalue_from_shape_and_type([batch, self.latent_dim], self.input_type, self.device, 0)
            images = ort.OrtValue.ortvalue_from_shape_and_type([batch, *IMAGE_SHAPE], np.float32, self.device, 0)
            binding = self.session.io_binding()
            binding.bind_ortvalue_input(self.input_name, z)
            binding.bind_ortvalue_output(self.output_name, images)
            options = ort.RunOptions()
            if self.graphs:
                options.add_run_config_entry("gpu_graph_id", str(len(self.bindings) + 1))
            self.bindings[batch] = (z, images, binding, options)
            for _ in range(self.CAPTURE_RUNS if self.graphs else 1):
                self.session.run_with_iobinding(binding, options)
        return self.bindings[batch]

    def __call__(self, latents: np.ndarray) -> np.ndarray:
        z, images, binding, options = self._binding(len(latents))
        z.update_inplace(np.ascontiguousarray(latents, dtype=self.input_type))
        self.session.run_with_iobinding(binding, options)
        result = images.numpy()  # a device buffer comes back as a new host array; a host one as a view
        return np.array(result, copy=True) if self.device == "cpu" else result

    def resident(self, batch: int):
        """A call that runs one bound batch, inputs and outputs left on the device."""
        _, _, binding, options = self._binding(batch)
        return lambda: self.session.run_with_iobinding(binding, options)


def placement(path: Path, device: str, threads: int = 1, profile_to: Path | None = None) -> dict:
    """How many graph nodes each execution provider ran in one profiled call (onnxruntime's
    profiler); profile_to keeps the profile's JSON (chrome://tracing format) for a per-op look."""
    ort = _onnxruntime(path)
    provider = provider_for(device, ort)
    options = session_options(ort, threads)
    options.enable_profiling = True
    with tempfile.TemporaryDirectory() as scratch:
        options.profile_file_prefix = str(Path(scratch) / "profile")
        session = ort.InferenceSession(str(path), sess_options=options, providers=providers_for(provider))
        z = np.zeros([8, *session.get_inputs()[0].shape[1:]],
                     _FLOAT_TYPES.get(session.get_inputs()[0].type, np.float32))
        for _ in range(3):
            session.run(None, {session.get_inputs()[0].name: z})
        profile = Path(session.end_profiling())
        events = json.loads(profile.read_text())
        if profile_to is not None:
            profile_to.parent.mkdir(parents=True, exist_ok=True)
            profile.replace(profile_to)
    nodes = {(event["args"]["op_name"], event["name"].rsplit("_kernel_time", 1)[0]): event["args"]["provider"]
             for event in events if event.get("cat") == "Node" and "provider" in event.get("args", {})}
    return dict(Counter(nodes.values()))
