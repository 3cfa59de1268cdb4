"""The runtime's core: `Generator` and `load_generator`. Run a trained generator without TensorFlow: ONNX (onnxruntime), TFLite (LiteRT), or Keras.

`load_generator(path)` picks the loader from the file suffix (the format registry, runegen/core/formats.py) and returns a
`Generator` whose `generate(latents)` maps float32 latents (n, latent_dim) to float32 images
(n, 28, 28, 1) in [-1, 1], whatever the model's own input/output types are (int8 TFLite models are
quantised and dequantised here). One module per format, each with `load(path, threads, device)`:
`runegen.runtime.onnx`, `.tflite` and `.keras_model`, the only one that imports TensorFlow, lazily,
inside its loader; `.onnx` and `.tflite` work on the base install (numpy, onnxruntime, LiteRT).

A file that cannot be used (missing, empty, truncated, not a generator, a device the runtime
lacks) is one typed `runegen.core.errors` error with a short reason, never a runtime's traceback.
A damaged file that loads and fails only when run raises its runtime's own error from `generate`
(the commands report it as one line: runegen/commands/options.py, `running`).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable

import numpy as np

from runegen.core.atomic import utf8_name
from runegen.core.devices import MAX_THREADS, device_name, usable_cores
from runegen.core.errors import ModelFileError, RunegenError, reason
from runegen.core.formats import BY_SUFFIX, FORMATS
from runegen.core.images import IMAGE_SHAPE
from runegen.core.latents import CODE_WEIGHTS_FILE, latents
from runegen.core.quiet import imports


def weights_digest(arrays) -> str:
    """A short fingerprint of a model's weights (as float32, with their shapes): an export records
    its Keras model's, so that files of two models in one folder can be told apart."""
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array, np.float32)
        digest.update(repr(array.shape).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:16]


class Generator:
    """One loaded generator. `generate` is the only thing that differs between formats.

    `model` is the runtime's own object: an onnxruntime InferenceSession, a LiteRT Interpreter, or
    the keras.Model (what the exporter converts). `latent_dim` is the width of the model's input;
    a class-conditional generator's input ends with the one-hot of `num_classes` classes
    (`classes` names them), built by `inputs`. `execution` says how a call runs (e.g. "IO binding
    + CUDA graph"); `resident(batch)`, where the runtime keeps buffers on a device, returns a call
    that runs one batch without copying latents in or images out (None elsewhere)."""

    def __init__(self, path: Path, format: str, latent_dim: int, metadata: dict,
                 run: Callable[[np.ndarray], np.ndarray], device: str = "cpu", threads: int | None = None,
                 model=None, execution: str = "", resident: Callable[[int], Callable[[], object]] | None = None):
        self.path, self.format, self.latent_dim, self.metadata = path, format, latent_dim, metadata
        self.device, self.threads, self.model = device, threads, model
        self.execution, self.resident, self._run = execution, resident, run

    @property
    def described(self) -> bool:
        """Whether runegen's metadata came with the model (an export's, or a run's config.json):
        without it the latent is drawn all Gaussian, which is wrong for a model trained with codes
        or classes."""
        return "codes" in self.metadata or "conditional" in self.metadata

    @property
    def classes(self) -> list[str]:
        classes = self.metadata.get("classes", [])
        if isinstance(classes, str):  # ONNX and TFLite metadata hold strings: a JSON list
            try:
                classes = json.loads(classes)
            except ValueError:
                classes = None
        if not isinstance(classes, list):
            raise ModelFileError(f"{self.path}: its classes metadata is not a JSON list of names")
        return [str(c) for c in classes]

    @property
    def num_classes(self) -> int:
        """Classes in the input's one-hot: 0 for an unconditional generator."""
        conditional = str(self.metadata.get("conditional", "")).strip().lower()
        if conditional not in ("", "true", "1", "false", "0"):  # "maybe" was read as false
            raise ModelFileError(f"{self.path}: its conditional metadata {self.metadata['conditional']!r} is not "
                                 "true or false")
        if conditional not in ("true", "1"):
            return 0
        count = len(self.classes)
        if not 0 < count < self.latent_dim:
            raise ModelFileError(f"{self.path}: conditional, but its metadata names {count} classes "
                                 f"for a latent input of {self.latent_dim}")
        return count

    @property
    def codes(self) -> int:
        """Latent codes: the last `codes` columns of an unconditional generator's input are the
        one-hot of a code drawn uniformly or by `code_weights` (InfoGAN, see
        runegen/training/gan.py); 0 = plain Gaussian input."""
        if self.num_classes:  # the class takes the one-hot (a conditional run's config.json keeps --codes)
            return 0
        value = self.metadata.get("codes", 0)
        codes = int(value) if str(value).strip().isdecimal() else -1
        if not 0 <= codes < self.latent_dim:
            raise ModelFileError(f"{self.path}: its codes metadata {value!r} is not a count in "
                                 f"0..{self.latent_dim - 1}")
        return codes

    @property
    def code_weights(self) -> np.ndarray | None:
        """How often each latent code is drawn (a generator trained with --code-prior), summing to
        1; None: uniformly."""
        weights = self.metadata.get("code_weights") if self.codes else None
        if weights is None:
            if self.codes and str(self.metadata.get("code_prior", "")).lower() in ("true", "1"):
                # a run's folder without its code_weights.json: codes drawn uniformly drew blends
                raise ModelFileError(f"{self.path}: trained with a learned code prior (code_prior in config.json), "
                                     f"but {CODE_WEIGHTS_FILE} is not beside it; copy it from the run's folder")
            return None
        try:
            weights = np.asarray(json.loads(weights) if isinstance(weights, str) else weights, np.float64)
        except (TypeError, ValueError):
            weights = np.zeros(0)
        with np.errstate(over="ignore"):  # 1e308s overflow their sum: refused, not a NaN draw
            total = weights.sum()
        if weights.shape != (self.codes,) or not np.isfinite(weights).all() or weights.min() < 0 \
                or not 0 < total < np.inf:
            raise ModelFileError(f"{self.path}: its code_weights metadata is not {self.codes} "
                                 "non-negative numbers with a finite sum above 0")
        return weights / total

    def inputs(self, n: int, seed: int, labels=None) -> np.ndarray:
        """n model inputs from `seed`, drawn as the model was trained: latents, plus the one-hot of
        `labels` (classes if conditional, codes if it has codes; when None drawn uniformly, or by
        the code prior)."""
        return latents(n, self.latent_dim, seed, self.num_classes or self.codes, labels, self.code_weights)

    def generate(self, latents: np.ndarray) -> np.ndarray:
        """float32 latents (n, latent_dim) -> float32 images (n, 28, 28, 1) in [-1, 1]."""
        try:
            given = z = np.asarray(latents)
        except ValueError:  # rows of different lengths
            raise RunegenError(f"expected latents of shape (n, {self.latent_dim}), got rows of different "
                               "lengths") from None
        if given.dtype.kind in "biuf":  # as the model reads them: 1e39 in float64 is inf in float32
            with np.errstate(over="ignore"):
                z = given.astype(np.float32)
        if z.dtype.kind not in "biuf" or not np.isfinite(z).all():
            raise RunegenError(f"expected finite real latents, got {given.dtype} values"
                               f"{'' if given.dtype.kind not in 'f' else ' with NaN or infinity (as float32)'}")
        if z.ndim != 2:
            raise RunegenError(f"expected latents of shape (n, {self.latent_dim}), got {z.shape}")
        if z.shape[1] != self.latent_dim:
            raise RunegenError(f"expected latent size {self.latent_dim}, got {z.shape[1]}")
        if len(z) == 0:
            return np.zeros((0, *IMAGE_SHAPE), np.float32)
        images = np.asarray(self._run(np.ascontiguousarray(z, dtype=np.float32)), dtype=np.float32)
        return images.reshape(len(z), *IMAGE_SHAPE)

    def __repr__(self) -> str:
        return f"Generator({str(self.path)!r}, format={self.format!r}, latent_dim={self.latent_dim})"


def load_generator(path: str | os.PathLike, threads: int | None = None, device: str = "cpu",
                   **options) -> Generator:
    """Load a generator file; the suffix picks the runtime (see `LOADERS`).

    threads: CPU threads for the runtime (default: every core it may run on). device: "cpu", or for ONNX an
    onnxruntime accelerator ("cuda", "tensorrt", "openvino", "coreml", "dml", ... or a provider name).
    options, each for one format only (another is refused): for TFLite `xnnpack` (False runs
    LiteRT's built-in kernels without its default XNNPACK delegate); for ONNX `io_binding` and
    `cuda_graph` (see runegen.runtime.onnx.load).
    """
    path = Path(path)
    known = "known: " + ", ".join(LOADERS)
    if not path.exists():
        raise ModelFileError(f"{path}: no such file")
    if path.is_dir():
        inside = sorted(str(p) for p in path.iterdir() if p.suffix.lower() in LOADERS)
        hint = f"in it: {', '.join(inside[:3])}{', ...' if len(inside) > 3 else ''}" if inside else known
        raise ModelFileError(f"{path} is a folder, not a model file ({hint})")
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        raise ModelFileError(f"{path}: unknown model format {path.suffix or '(no suffix)'!r} ({known})")
    if not BY_SUFFIX[path.suffix.lower()].needs_tensorflow and not utf8_name(path):  # was "not a valid model"
        raise ModelFileError(f"{ascii(str(path))[1:-1]}: a name that is not valid UTF-8, which onnxruntime and "
                             "LiteRT cannot open; rename the file")
    try:
        size = path.stat().st_size
        if size:  # (a FIFO's size is 0: never opened, where it would wait for a writer)
            with open(path, "rb"):  # one it may not read was "not a valid ONNX model (system error number 13)"
                pass
    except OSError as error:
        raise ModelFileError(f"{path}: cannot read ({reason(error)})") from None
    if size == 0:
        raise ModelFileError(f"{path} is empty (0 bytes)")
    if threads is not None and (not isinstance(threads, (int, np.integer)) or not 1 <= threads <= MAX_THREADS):
        raise RunegenError(f"threads must be a whole number in 1..{MAX_THREADS}, got {threads!r}")
    if device is None:
        device = "cpu"
    if not isinstance(device, str) or not device.strip():  # "" ran on the CPU unsaid
        raise RunegenError(f"device must be a name such as 'cpu' or 'cuda', got {device!r}")
    taken = BY_SUFFIX[path.suffix.lower()].options
    unknown = sorted(set(options) - set(taken))  # a typo was ignored, and the option with it
    if unknown:
        raise RunegenError(f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} for a "
                           f"{path.suffix.lower()} model (it takes {', '.join(taken) or 'none'})")
    threads = threads or usable_cores()
    generator = loader(path, threads, device_name(device), **options)  # one reading of names for every format
    generator.code_weights  # reads and checks every part of the metadata the latents are drawn by
    _check_described_width(generator)
    return generator


def _check_described_width(generator: Generator) -> None:
    """The latent size the metadata gives against the model's input: another model's sidecar or
    config.json beside a file drew wrong images without a word. An export's metadata gives the
    input's width; a run's config.json the latent before a conditional generator's class one-hot."""
    declared = str(generator.metadata.get("latent_dim", "")).strip()
    if not declared.isdecimal():
        return
    width = int(declared) + (generator.num_classes if generator.format == "keras" else 0)
    if width != generator.latent_dim:
        place = FORMATS[generator.format].metadata_place.format(name=generator.path.name)
        raise ModelFileError(f"{generator.path}: its metadata ({place}) describes an input of {width}, but the "
                             f"model takes {generator.latent_dim}: another model's metadata?")


# --- The shipped models ------------------------------------------------------------------------

SHIPPED_DIR = Path(__file__).parent.parent / "models"


def shipped_generator(conditional: bool = False) -> Path:
    """The rune generator shipped in the package: the float32 ONNX file where onnxruntime imports,
    else the int8 TFLite one (32-bit Raspberry Pi OS has only tflite-runtime; an onnxruntime wheel
    whose native library does not load is installed but of no use)."""
    folder = SHIPPED_DIR / ("runes-s1-conditional" if conditional else "runes-s1")
    candidates = [folder / "generator_f32.onnx", folder / "generator_int8.tflite"]
    if not imports("onnxruntime"):  # (the ONNX file's loader imports it next anyway)
        candidates.reverse()
    for path in candidates:
        if path.exists():
            return path
    raise ModelFileError(f"no shipped generator in {folder}; pass a model file")


# The formats, from the registry (runegen/core/formats.py): file suffix -> loader(path, threads, device,
# **options) -> Generator; each loader's module is imported only when a file of its format is loaded.
LOADERS: dict[str, Callable[..., Generator]] = {fmt.suffix: fmt.load for fmt in FORMATS.values()}
