"""Devices and cores, read alike by every command and format: runegen's short names (cpu, cuda,
...) for onnxruntime's execution providers, a provider's own name in any case, how the errors
list what a machine has, and the cores and threads a runtime may use. No runtime is imported
here: generate, bench and load_generator read a name before any runtime is loaded.
"""

from __future__ import annotations

import os

# --device -> onnxruntime execution provider. A provider's own name is accepted too, in any case.
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


def device_name(device: str) -> str:
    """`device` as runegen names it (and prints it): a short name or the name of its provider, in
    any case, is the short name (CPU, CPUExecutionProvider: cpu); a provider without one keeps
    the name given."""
    wanted = device.strip().lower()
    return next((name for name, provider in ONNX_PROVIDERS.items() if wanted in (name, provider.lower())),
                device.strip())


def device_names(providers: list[str]) -> list[str]:
    """The --device names of these onnxruntime providers: runegen's short names (in ONNX_PROVIDERS'
    order), then the own names of providers that have none."""
    return ([name for name, provider in ONNX_PROVIDERS.items() if provider in providers]
            + [provider for provider in providers if provider not in ONNX_PROVIDERS.values()])


def available_text(names: list[str]) -> str:
    """device_names as the errors list them: runegen's names, then onnxruntime's apart, so that
    the two kinds are not read as one list."""
    short, others = [n for n in names if n in ONNX_PROVIDERS], [n for n in names if n not in ONNX_PROVIDERS]
    return ", ".join(short) + (f"; onnxruntime providers without a short name: {', '.join(others)}" if others else "")


# The most threads a runtime is given: more only slow it down (LiteRT crashed with 100,000;
# onnxruntime took minutes with 1,000 on 2 cores).
MAX_THREADS = 256


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity (taskset, systemd's CPUAffinity=,
    Docker's --cpuset-cpus) where the system has one, else every core. os.cpu_count() counts the
    machine's: pinned to one core of two, "all cores" ran two threads on it."""
    if hasattr(os, "process_cpu_count"):  # Python 3.13
        return os.process_cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1
