"""The machine and software a bench ran on, for its report: the CPU, the cores, and the versions of
the modules as this Python imports them (with the distribution that provided each)."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from pathlib import Path

from runegen.core.devices import usable_cores


def imported_version(module_name: str, distribution: str) -> str | None:
    """'<distribution> <version>' of the module this Python imports. onnxruntime is provided by
    several distributions (onnxruntime, onnxruntime-gpu, ...): the one named is the one whose files
    hold the imported module, and two of them in one environment overwrite each other's files."""
    import importlib

    try:
        module = importlib.import_module(module_name)
    except Exception:  # noqa: BLE001 - absent, or broken (tflite-runtime with NumPy 2)
        return None
    location = Path(module.__file__).resolve().parent
    names = list(dict.fromkeys(importlib.metadata.packages_distributions().get(module_name, [distribution])))
    name = next((n for n in names if _distribution_holds(n, module_name, location)), distribution)
    version = getattr(module, "__version__", None) or importlib.metadata.version(name)
    others = [n for n in names if n != name]
    clash = f" (also installed: {', '.join(others)})" if others else ""
    return f"{name} {version}{clash}"


def _distribution_holds(name: str, module_name: str, location: Path) -> bool:
    try:
        files = importlib.metadata.distribution(name).locate_file(module_name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return Path(files).resolve() == location


def environment() -> dict:
    def version(package: str) -> str | None:
        try:
            return f"{package} {importlib.metadata.version(package)}"
        except importlib.metadata.PackageNotFoundError:
            return None

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    # Each entry is "<distribution> <version>"; onnxruntime and LiteRT as imported, the others from
    # their metadata (importing TensorFlow here would cost seconds).
    return {"cpu": cpu, "cores": usable_cores(), "machine_cores": os.cpu_count(), "machine": platform.machine(),
            "system": platform.platform(), "python": platform.python_version(),
            "versions": {"runegen": version("runegen"), "numpy": imported_version("numpy", "numpy"),
                         "onnxruntime": imported_version("onnxruntime", "onnxruntime"),
                         "LiteRT": imported_version("ai_edge_litert", "ai-edge-litert"),
                         "tflite-runtime": version("tflite-runtime"),
                         "tensorflow": version("tensorflow"), "keras": version("keras")}}
