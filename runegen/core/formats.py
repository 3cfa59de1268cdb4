"""The model formats, described as data: the one registry that export, runtime and bench read.

A `Format` names its file suffix, the runtime module that loads it (`load(path, threads, device,
**options)`), where its metadata lives (inside the file, or a JSON sidecar `<file>.json`), the
variants the exporter writes (each with its converter and parity tolerance; what the converters
share, such as the float32 ONNX graph, is made once per export by the format's `prepare`), the
runtimes the bench measures it with and the devices its runtime offers beside the CPU. Adding a
format is one converter module, one runtime module and one entry here. `exported_files` reads a
folder by it: which files are exported generators, of which format and variant (for bench, and for
export's check of a folder's other files). (A few messages still name the formats in words;
runtime/generator.py's shipped_generator names the shipped files.) No TensorFlow here: converters
and loaders are imported only when called.

A variant's tolerance is the mean absolute error against the Keras generator, on the [-1, 1]
scale, above which its export fails.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from runegen.core.errors import RunegenError


def lazy(module: str, function: str) -> Callable:
    """`module.function`, imported at the first call (converters need TensorFlow; loaders their runtime)."""
    def call(*args, **kwargs):
        return getattr(importlib.import_module(module), function)(*args, **kwargs)
    call.__qualname__ = call.__name__ = f"{module}.{function}"
    return call


@dataclass(frozen=True)
class Variant:
    format: str
    name: str
    description: str
    mean_abs_tolerance: float
    converter: Callable  # (the format's prepared model, target path, calibration latents, metadata) -> None

    def filename(self, stem: str) -> str:
        return f"{stem}_{self.name}.{self.format}"


SIDECAR = "{name}.json"  # a sidecar's name, from its model file's name


@dataclass(frozen=True)
class BenchRuntime:
    """One way the bench runs a format's files: the row's label, the worker's kind of
    measurement, and the options it passes to the loader."""
    label: str
    kind: str = "runtime"  # runtime: Generator.generate; keras_eager / keras_predict: the Keras model
    options: tuple[tuple[str, object], ...] = ()
    variant: str = ""  # the row's variant name for a format without variants (the .keras file)


@dataclass(frozen=True)
class Format:
    name: str
    suffix: str
    load: Callable  # (path, threads, device, **options) -> runegen.runtime.Generator
    options: tuple[str, ...] = ()  # the keyword options `load` takes, sorted (load_generator refuses others)
    variants: tuple[Variant, ...] = ()  # none: not an export target (the trained .keras file)
    # (inference model, input width, scratch folder) -> what its variants' converters convert,
    # made once per export for all of them (ONNX: the float32 graph; TFLite: a SavedModel)
    prepare: Callable | None = None
    bench_runtimes: tuple[BenchRuntime, ...] = ()
    # () -> the --device names its runtime offers here (ImportError: the runtime is not installed);
    # None: it runs on the CPU only
    devices: Callable | None = None
    sidecar_metadata: bool = False  # metadata in <file>.json (TFLite's is not readable without TF)
    metadata_place: str = "inside the file"  # where a user looks for it ({name}: the file's name)
    needs_tensorflow: bool = False  # to run it (every format needs TensorFlow to be exported)
    # (path, device, threads, profile_to) -> nodes each execution provider ran, from the runtime's
    # profiler (kept as JSON in profile_to when given); None: the runtime has no such report
    placement: Callable | None = None

    def sidecar(self, path) -> Path | None:
        """The JSON file beside `path` that holds its metadata, for a format that keeps it there."""
        return Path(path).with_name(SIDECAR.format(name=Path(path).name)) if self.sidecar_metadata else None

    def undescribed(self, path) -> str:
        """What a file of this format that came without runegen's metadata means for its images."""
        place = self.metadata_place.format(name=Path(path).name)
        what = (f"has metadata ({place}) that does not say how its latent is drawn (exported from a .keras file "
                "without its run's config.json)" if self._has_sidecar(Path(path))
                else f"came without runegen's metadata ({place})")
        return (f"{path} {what}: its latent is drawn all Gaussian, so a model trained with latent codes or "
                "classes draws wrong images")

    def _has_sidecar(self, path: Path) -> bool:
        """Whether a sidecar lies beside `path` or beside the file a link points to (as the loader looks)."""
        try:
            return self.sidecar_metadata and any(self.sidecar(p).is_file() for p in (path, path.resolve()))
        except OSError:  # a name past the file system's limit: no sidecar
            return False


def _variants(fmt: str, *rows: tuple[str, str, float, str]) -> tuple[Variant, ...]:
    return tuple(Variant(fmt, name, text, tolerance, lazy(f"runegen.export.{fmt}", function))
                 for name, text, tolerance, function in rows)


FORMATS: dict[str, Format] = {
    "onnx": Format(
        "onnx", ".onnx", lazy("runegen.runtime.onnx", "load"), ("cuda_graph", "io_binding"),
        _variants("onnx",
                  ("f32", "float32", 1e-4, "write_f32"),
                  ("f16", "float16 inside, float32 input/output (for GPUs)", 5e-3, "write_f16"),
                  ("int8", "static int8 (QDQ), calibrated on latents", 0.03, "write_int8")),
        prepare=lazy("runegen.export.onnx", "prepare"),
        bench_runtimes=(BenchRuntime("onnxruntime"),), devices=lazy("runegen.runtime.onnx", "available_devices"),
        placement=lazy("runegen.runtime.onnx", "placement")),
    "tflite": Format(
        "tflite", ".tflite", lazy("runegen.runtime.tflite", "load"), ("xnnpack",),
        _variants("tflite",
                  ("f32", "float32", 1e-4, "write_f32"),
                  ("f16", "float16 weights, float32 compute", 5e-3, "write_f16"),
                  ("dynamic", "dynamic-range: int8 weights, float activations", 0.03, "write_dynamic"),
                  ("int8", "full integer inside, float32 input/output", 0.02, "write_int8"),
                  ("int8io", "full integer, int8 input/output", 0.03, "write_int8io")),
        prepare=lazy("runegen.export.tflite", "prepare"),
        # LiteRT with its default XNNPACK delegate, and its own built-in kernels without it
        bench_runtimes=(BenchRuntime("LiteRT+XNNPACK", options=(("xnnpack", True),)),
                        BenchRuntime("LiteRT", options=(("xnnpack", False),))),
        sidecar_metadata=True, metadata_place=f"{SIDECAR} beside it"),
    # The trained model itself: loaded for export and as the bench's reference, never written.
    "keras": Format(
        "keras", ".keras", lazy("runegen.runtime.keras_model", "load"),
        bench_runtimes=(BenchRuntime("Keras call", "keras_eager", variant="eager"),
                        BenchRuntime("Keras predict", "keras_predict", variant="predict")),
        needs_tensorflow=True, metadata_place="its run's config.json beside it"),
}
EXPORT_FORMATS = {name: fmt for name, fmt in FORMATS.items() if fmt.variants}
BY_SUFFIX = {fmt.suffix: fmt for fmt in FORMATS.values()}
EXPORTED_SUFFIXES = "/".join(fmt.suffix for fmt in EXPORT_FORMATS.values())  # ".onnx/.tflite", for messages
# The metrics classifiers' files (runegen/quality/classifier.py) start with this name: in a folder
# of exported generators they are not generators.
CLASSIFIER_STEM = "classifier"


def select_variants(formats: list[str], variant_names: list[str] | None) -> list[Variant]:
    """The variants of these export formats (all of them, or those named); the error for an
    unknown name says which names are known."""
    if not formats:
        raise RunegenError(f"no format given (known: {', '.join(EXPORT_FORMATS)}, all)")
    formats = [f.lower() for f in formats]  # in any case, as devices are named
    variant_names = [v.lower() for v in variant_names] if variant_names else variant_names
    # each once, in the order first named: `-f onnx,onnx` exported onnx twice (a -q name repeated picks once)
    unknown = [f for f in formats if f not in EXPORT_FORMATS and f != "all"]  # `all,caffe` too: a typo said
    if unknown:
        raise RunegenError(f"unknown format {unknown[0]!r} (known: {', '.join(EXPORT_FORMATS)}, all)")
    formats = list(EXPORT_FORMATS) if "all" in formats else list(dict.fromkeys(formats))
    chosen = [v for f in formats for v in EXPORT_FORMATS[f].variants
              if not variant_names or "all" in variant_names or v.name in variant_names]
    for name in variant_names or []:
        if name != "all" and not any(v.name == name for v in chosen):
            known = sorted({v.name for f in formats for v in EXPORT_FORMATS[f].variants})
            raise RunegenError(f"unknown variant {name!r} for {', '.join(formats)} (known: {', '.join(known)})")
    return chosen


def exported_files(export_dir: Path, stem: str) -> list[tuple]:
    """(format, variant name, path, tolerance) of every file of an export format in export_dir.
    The export's own names (`<stem>_<variant>.<format>`) come first, in the registry's order, so
    that without Keras the f32 ONNX file is the parity reference; a file named otherwise keeps
    its name as its variant, and the tolerance of the variant its name ends in (none: unchecked)."""
    found, inside = [], _listing(export_dir)
    for fmt in EXPORT_FORMATS.values():
        named = {variant.filename(stem): variant for variant in fmt.variants}
        found += [(fmt, variant.name, export_dir / name, variant.mean_abs_tolerance)
                  for name, variant in named.items() if (export_dir / name).is_file()]
        # any case of the suffix, as one file given is taken ("My Model.TFLITE" was passed over)
        found += [exported_file(path, stem) for path in inside
                  if path.suffix.lower() == fmt.suffix and path.name not in named and path.is_file()
                  and not _not_a_generator(path)]
    return found


def _listing(folder: Path) -> list[Path]:
    """The folder's entries, sorted; none where it is missing or cannot be read (as glob gives)."""
    try:
        return sorted(folder.iterdir())
    except OSError:
        return []


def exported_file(path: Path, stem: str) -> tuple:
    """(format, variant name, path, tolerance) of one exported file: an export's own name
    (`<stem>_<variant>.<format>`) is that variant; a file named otherwise keeps its name as its
    variant, and the tolerance of the variant its name ends in (none: unchecked)."""
    fmt = BY_SUFFIX[path.suffix.lower()]
    variant = next((v for v in fmt.variants if v.filename(stem) == path.name), None)
    if variant is not None:
        return fmt, variant.name, path, variant.mean_abs_tolerance
    like = next((v for v in fmt.variants if path.stem.endswith(f"_{v.name}")), None)
    return fmt, path.stem, path, like.mean_abs_tolerance if like else None


def _not_a_generator(path: Path) -> bool:
    """A temporary file (.name-xxxx, a killed export's) or a metrics classifier: the one a run
    folder caches beside its generator (classifier.onnx) or the shipped ones (classifier_runes.onnx)."""
    return path.name.startswith(".") or path.stem == CLASSIFIER_STEM or path.stem.startswith(f"{CLASSIFIER_STEM}_")
