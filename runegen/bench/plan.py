"""`runegen bench`: parity and speed of every exported variant, with the peers (Keras) and each
device's own limit (runegen.bench.limits) measured in the same run, in the same process as the row.

Rows come from the format registry; each (format, variant, runtime, device, threads) row is
measured by `runegen.bench.worker` in a process of its own. Nothing here imports TensorFlow:
the Keras rows and the export of missing variants run only where TensorFlow is installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from runegen.bench import targets
from runegen.bench.config import BenchConfig
from runegen.bench.environment import environment
from runegen.bench.sources import export_missing, export_stem, exports_missing_variants, locate
from runegen.core.devices import ONNX_PROVIDERS, available_text, device_name
from runegen.core.errors import DeviceError, ModelFileError, reason
from runegen.core.formats import BY_SUFFIX, FORMATS, exported_file, exported_files
from runegen.core.quiet import imports, installed
from runegen.quality.classifier import SHIPPED_CLASSIFIER
from runegen.runtime.generator import load_generator

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "TF_NUM_INTRAOP_THREADS")
PARITY_SEED, PARITY_SAMPLES = 1234, 64
# Keras against itself: one oneDNN thread and two round differently (~1e-7), so not exactly 0.
KERAS_TOLERANCE = 1e-5


@dataclass
class Row:
    format: str          # keras, onnx, tflite
    variant: str         # eager, predict, f32, int8, ...
    runtime: str         # "Keras call", "onnxruntime", "LiteRT+XNNPACK", ...
    device: str
    path: str
    kind: str            # worker kind: keras_eager, keras_predict, runtime
    tolerance: float | None = None
    options: dict = field(default_factory=dict)  # for the loader (the registry's BenchRuntime.options)
    threads: int = 1
    figures: dict = field(default_factory=dict)

    @property
    def status(self) -> str:
        """✅ runs and matches, ❎ runs but parity fails, ❌ fails to load or run."""
        if not self.figures.get("ok"):
            return "❌"
        parity = self.figures.get("parity")
        if not self.figures.get("finite") or (parity and self.tolerance is not None
                                               and parity["mean_abs"] > self.tolerance):
            return "❎"
        return "✅"


def available_devices() -> list[str]:
    """The devices here, named as `generate --device` takes them (runegen/core/devices.py): the
    CPU, then those of every format's runtime that offers more (the registry's `devices`)."""
    names = ["cpu"]
    for fmt in FORMATS.values():
        if fmt.devices is not None:
            try:
                names += fmt.devices()
            except ImportError:  # 32-bit Pi OS has no onnxruntime: LiteRT's successor alone, on the CPU
                pass
    return list(dict.fromkeys(names))


def resolve_devices(device: str) -> list[str]:
    """The rows' devices for --device, read as generate reads it (any case; a provider's own name
    too); 'all': every available one runegen has a short name for (not onnxruntime's
    AzureExecutionProvider, say, in every wheel, which runs a local model on the CPU)."""

    available = available_devices()
    wanted = device_name(device).lower()
    if wanted == "all":
        return [name for name in available if name in ONNX_PROVIDERS]
    found = next((name for name in available if name.lower() == wanted), None)
    if found is None:
        raise DeviceError(f"{device}: not available here (available: {available_text(available)})")
    return [found]


def plan_rows(keras_path: Path | None, export_dir: Path, devices: list[str],
              only: Path | None = None) -> list[Row]:
    """One row per (file, bench runtime, device) from the format registry: the .keras source
    first (the parity reference, where TensorFlow is here), then every exported file found (or
    `only` that one)."""
    files = []  # (format, variant name, path, tolerance)
    if keras_path is not None and installed("tensorflow") and only is None:
        files.append((BY_SUFFIX[keras_path.suffix.lower()], None, keras_path, KERAS_TOLERANCE))
    stem = keras_path.stem if keras_path else export_stem(export_dir)
    # A file given alone is benched as named (an upper-case suffix, a hidden name), as generate runs it.
    files += [exported_file(only, stem)] if only is not None else exported_files(export_dir, stem)
    rows = []
    for fmt, variant, path, tolerance in files:
        for runtime in fmt.bench_runtimes:
            rows += [Row(fmt.name, variant or runtime.variant, runtime.label, device, str(path), runtime.kind,
                         tolerance, dict(runtime.options))
                     for device in devices if fmt.devices is not None or device == "cpu"]
    return rows


def is_lossless(row: "Row") -> bool:
    """Keras itself or a float32 file: a parity reference (an int8 file as reference would make
    every f32 file miss its tolerance)."""
    return row.tolerance is not None and row.tolerance <= KERAS_TOLERANCE * 10


def run_worker(spec: dict, threads: int, scratch: Path, timeout: float = 900) -> dict:
    spec_path = scratch / f"spec_{os.getpid()}_{len(list(scratch.iterdir()))}.json"
    spec_path.write_text(json.dumps(spec))
    env = {**os.environ, **{name: str(threads) for name in THREAD_VARIABLES},
           "TF_NUM_INTEROP_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    try:
        done = subprocess.run([sys.executable, "-m", "runegen.bench.worker", str(spec_path)],
                              capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timed out after {timeout:.0f} s"}
    lines = done.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, ValueError):
        last = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        return {"ok": False, "error": f"worker died ({reason(last, 200)})"}


def bench(model: Path, config: BenchConfig, progress=lambda message: None) -> dict:
    """Every row `config` asks for on `model` (a .keras file, a run folder, a folder of exports or one
    exported file)."""
    rows, export_errors = _planned(model, config, progress)
    classifier = _quality_classifier() if config.quality_samples else None
    results, reference_row = _measured(rows, config, classifier, progress)
    notes = list(dict.fromkeys(FORMATS[row.format].undescribed(row.path) for row in results  # once a file
                               if row.figures.get("described") is False))
    digest = reference_row.figures.get("weights_digest") if reference_row else None
    notes += list(dict.fromkeys(f"{row.path}: exported from other weights than {reference_row.path}, the parity "
                                "reference (two models in one folder?)" for row in results
                                if digest and row.figures.get("weights_digest") not in (None, digest)))
    if config.quality_samples and classifier is None:
        notes.append("recognisability not measured: the rune classifier runs on onnxruntime, which this Python cannot import")
    report = {"environment": environment(), "notes": notes,
              "reference": f"{reference_row.format} {reference_row.variant}" if reference_row else None,
              "flops_per_image": _flops_per_image(results), "export_errors": export_errors,
              "settings": config.settings,
              "rows": [{**asdict(r), "status": r.status, "size_mb": Path(r.path).stat().st_size / 1e6
                        if Path(r.path).exists() else None} for r in results]}
    _add_gflops(report)
    report["targets"] = targets.check(report)
    return report


def _planned(model: Path, config: BenchConfig, progress) -> tuple[list[Row], list[str]]:
    """(the rows to measure, the errors of exporting the variants missing where TensorFlow is)."""
    keras_path, export_dir = locate(model)
    one_file = model.is_file() and keras_path is None  # locate found one exported file
    # Given alone, a file that does not load is bad input, not a failed row. Checked on the CPU only
    # where a CPU row is asked for: a file only an accelerator's provider runs gets its row.
    if one_file and "cpu" in config.devices:
        load_generator(model, threads=1)
    export_errors = []
    if exports_missing_variants(keras_path, export_dir) and installed("tensorflow"):
        progress("exporting missing variants")
        export_errors = export_missing(keras_path, export_dir)
    rows = plan_rows(keras_path, export_dir, config.devices, only=model if one_file else None)
    if not rows:
        why = f"no exported files in {export_dir}" if keras_path else "no exported files"
        if keras_path and not installed("tensorflow"):
            why += ", and its .keras file needs TensorFlow: pip install 'runegen[train]'"
        raise ModelFileError(f"{model}: nothing to benchmark ({why})")
    return rows, export_errors


def _measured(rows: list[Row], config: BenchConfig, classifier: str | None, progress) -> tuple[list[Row], Row | None]:
    """Each row at each thread count, measured by a worker process, in the rows' order; and the
    row whose outputs were the parity reference (None: parity not measured).

    The first lossless row that runs gives the reference outputs: Keras where it runs, else the
    f32 ONNX file, else the next float32 file. The lossless rows run first, so that every row is
    compared with the reference."""
    results: list[tuple[int, int, Row]] = []  # (threads, place in rows, row): put back in order
    reference_row = None
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        reference = scratch / "reference.npy"
        common = {"batches": config.batches, "min_seconds": config.min_seconds, "runs": config.runs,
                  "parity_seed": PARITY_SEED, "parity_samples": PARITY_SAMPLES,
                  "classifier": classifier, "quality_samples": config.quality_samples}
        for count in config.threads:
            for place, template in sorted(enumerate(rows), key=lambda item: not is_lossless(item[1])):
                row = Row(**{**asdict(template), "threads": count, "figures": {}})
                progress(f"{row.format} {row.variant} {row.runtime} {row.device}, {count} thread(s)")
                first = not reference.exists() and is_lossless(row)
                profile_path = (config.profile / f"{row.format}_{row.variant}_{row.device}_{count}thr.json"
                                if config.profile is not None and FORMATS[row.format].placement else None)
                row.figures = run_worker({**common, "kind": row.kind, "path": row.path, "threads": count,
                                          "device": row.device, "options": row.options, "variant": row.variant,
                                          "profile": str(profile_path) if profile_path else None,
                                          "save_outputs": str(reference) if first else None,
                                          "reference": str(reference) if reference.exists() and not first else None},
                                         count, scratch)
                if first and reference.exists():
                    reference_row = row
                    if row.figures.get("ok"):
                        row.figures["parity"] = {"max_abs": 0.0, "mean_abs": 0.0, "psnr": float("inf")}
                results.append((count, place, row))
    ordered = [row for _, _, row in sorted(results, key=lambda item: (config.threads.index(item[0]), item[1]))]
    return ordered, reference_row


def _quality_classifier() -> str | None:
    """The shipped ONNX rune classifier, if it is here and onnxruntime imports (not on 32-bit Pi OS)."""
    path = SHIPPED_CLASSIFIER.with_suffix(".onnx")
    return str(path) if path.exists() and imports("onnxruntime") else None


def _flops_per_image(rows: list[Row]) -> int | None:
    """From the exported files' metadata (written by `runegen export` from the Keras layers), as
    each row's worker read it."""
    for row in rows:
        value = str(row.figures.get("flops_per_image") or "")
        if value.isdigit():
            return int(value)
    return None


def _add_gflops(report: dict) -> None:
    """Achieved GFLOP/s per batch and its share of the limit measured in the row's own worker (its
    device's: numpy SGEMM on the CPU, onnxruntime's MatMul on an accelerator); `limits` is the
    best of each limit seen, per thread count."""
    flops = report["flops_per_image"]
    limits: dict[str, float] = {}
    for row in report["rows"]:
        limit = row["figures"].get("limit") or {}
        gflops = limit.get("gflops")
        if gflops:
            key = f"{limit['name']}, {row['threads']} thr"
            limits[key] = max(gflops, limits.get(key, 0.0))
        for prefix in ("", "resident_"):
            rates = row["figures"].get(f"{prefix}throughput") or {}
            row[f"{prefix}gflops"] = {b: rate * flops / 1e9 for b, rate in rates.items()} if flops else {}
            row[f"{prefix}share_of_limit"] = ({b: g / gflops for b, g in row[f"{prefix}gflops"].items()}
                                              if gflops else {})
    report["limits"] = limits
