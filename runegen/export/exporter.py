"""Export a trained Keras generator to deployable files, each one proving itself.

For every variant in runegen.core.formats: fold BatchNormalization into the inference graph, rewrite
each transposed convolution as an ordinary Conv2D (stride 1) or a sub-pixel Conv2D followed by a
depth-to-space shuffle (stride 2) (runegen/export/subpixel.py: ordinary Conv is where onnxruntime
and LiteRT have their fast fp32 and int8 kernels; both steps are checked against the Keras output
to 1e-4), convert, then load the written file with the same TensorFlow-free runtime a user gets,
run it on fixed latents and compare with the Keras model. A file that fails (NaN, empty, parity
past its tolerance) never reaches its target path: conversion writes to a temporary file that is
renamed only after the check passes.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import runegen
from runegen.core import atomic, images
from runegen.core.errors import ModelFileError, RunegenError, reason
from runegen.core.formats import EXPORT_FORMATS, FORMATS, Variant, exported_files
from runegen.core.parity import Parity
from runegen.export.flops import model_flops
from runegen.runtime import load_generator

PARITY_SEED, PARITY_SAMPLES = 1234, 256
CALIBRATION_SEED, CALIBRATION_SAMPLES = 4321, 512  # latents drawn as the model's inputs (codes, classes)
# Largest change (of outputs in [-1, 1]) the graph rewrites may make: round-off is about 1e-6, and
# 1.2e-5 with all-Gaussian latents (no code one-hots); a wrong rewrite is off by far more.
FOLD_TOLERANCE = 1e-4
SUBPIXEL_TOLERANCE = 1e-4  # the rewritten graph against the original Keras output, like the fold
SIDE_BY_SIDE = 12


@dataclass
class ExportResult:
    variant: Variant
    path: Path
    size_bytes: int = 0
    parity: Parity | None = None
    error: str | None = None
    samples: np.ndarray | None = None  # the first few parity images, for a side-by-side look

    @property
    def ok(self) -> bool:
        return self.error is None


def load_keras_generator(path: Path):
    """The generator to export, with a clear error for anything that is not one."""

    generator = load_generator(path)
    if generator.format in EXPORT_FORMATS:  # an export's file, not the trained one it is made from
        raise ModelFileError(f"{path}: export takes a trained .keras generator, not a .{generator.format} file")
    return generator


def metadata(generator, variant: Variant) -> dict[str, str]:
    source, code_weights = generator.metadata, generator.code_weights
    return {"latent_dim": str(generator.latent_dim), "output_range": "[-1, 1]",
            "flops_per_image": str(model_flops(generator.model)),
            "output_shape": "[28, 28, 1]", "preset": str(source.get("preset", "unknown")),
            "classes": json.dumps(list(source.get("classes", []))), "variant": variant.name,
            # Only what is known: a .keras file without its run's config.json is undescribed, and its
            # exports stay so, so that generate warns about them too ("conditional": "false" said
            # it knew).
            **({"conditional": "true" if generator.num_classes else "false", "codes": str(generator.codes)}
               if generator.described else {}),
            **({"code_weights": json.dumps([round(float(w), 6) for w in code_weights])}
               if code_weights is not None else {}),
            "weights_digest": source["weights_digest"], "runegen_version": runegen.__version__}


def export(generator, variants: list[Variant], out: Path, pictures: bool = True) -> list[ExportResult]:
    """Write each variant of `generator` (from load_keras_generator) into `out`, and for each
    format `<stem>_parity_<format>.png`: the same latents drawn by Keras (top row) and by each of
    its files that passed (one picture per format, so that exporting the formats one at a time
    into one folder keeps both), unless `pictures` is False."""
    from runegen.export.fold import fold_batch_norm
    from runegen.export.subpixel import conv_transpose_as_conv
    keras_model = generator.model
    out.mkdir(parents=True, exist_ok=True)
    inference = fold_batch_norm(keras_model)
    parity_latents = generator.inputs(PARITY_SAMPLES, PARITY_SEED)
    reference = np.asarray(keras_model(parity_latents, training=False), dtype=np.float32)
    fold_error = float(np.abs(np.asarray(inference(parity_latents)) - reference).max())
    if fold_error > FOLD_TOLERANCE:
        raise ModelFileError(f"{generator.path}: folding BatchNormalization changed its output by {fold_error:.2e}")
    inference = conv_transpose_as_conv(inference)
    rewrite_error = float(np.abs(np.asarray(inference(parity_latents)) - reference).max())
    if rewrite_error > SUBPIXEL_TOLERANCE:
        raise ModelFileError(f"{generator.path}: rewriting its transposed convolutions as convolutions "
                             f"changed its output by {rewrite_error:.2e}")
    calibration = generator.inputs(CALIBRATION_SAMPLES, CALIBRATION_SEED)

    results, stem = [], generator.path.stem
    for fmt in dict.fromkeys(v.format for v in variants):
        mine = [v for v in variants if v.format == fmt]
        with tempfile.TemporaryDirectory() as scratch:
            try:  # what the format's converters share (the ONNX graph, a SavedModel), made once
                prepare = FORMATS[fmt].prepare
                prepared = prepare(inference, calibration.shape[1], Path(scratch)) if prepare else inference
            except Exception as error:  # noqa: BLE001 - as a converter's failure: each of its variants fails
                results += [ExportResult(v, out / v.filename(stem), error=_failure(error)) for v in mine]
                continue
            results += [_export_one(v, v.converter, prepared, out / v.filename(stem), calibration,
                                    metadata(generator, v), parity_latents, reference) for v in mine]
    for fmt in dict.fromkeys(v.format for v in variants if pictures):
        rows = [reference[:SIDE_BY_SIDE]] + [r.samples for r in results
                                             if r.variant.format == fmt and r.samples is not None]
        picture = parity_picture(out, stem, fmt)
        try:
            images.save_png(images.grid(images.to_uint8(np.concatenate(rows)), columns=SIDE_BY_SIDE), picture)
        except OSError as error:  # was a traceback, after the files themselves were written
            written = ", ".join(r.path.name for r in results if r.ok) or "none"
            raise ModelFileError(f"{picture}: cannot write the parity picture ({reason(error)}); "
                                 f"the files written: {written}") from None
    return results


def of_other_weights(generator, out: Path, written: list[Path]) -> list[Path]:
    """The exported files of `generator`'s name in `out`, other than `written`, that were not made
    from its weights (another model exported into this folder, or an export made before runegen
    recorded the weights, or a file that does not load): bench rates every file of a folder against
    one model."""
    others = []
    # the files bench would rate, whatever their names
    for path in (path for _, _, path, _ in exported_files(out, generator.path.stem) if path not in written):
        try:
            digest = load_generator(path).metadata.get("weights_digest")
        except RunegenError:
            digest = None
        if digest != generator.metadata["weights_digest"]:
            others.append(path)
    return others


def parity_picture(out: Path, stem: str, fmt: str) -> Path:
    return out / f"{stem}_parity_{fmt}.png"


def _failure(error: Exception) -> str:
    return f"{type(error).__name__}: {reason(error, 200)}"


def _export_one(variant, convert, model, target, calibration, meta, parity_latents, reference):

    result = ExportResult(variant, target)
    replaced_sidecar: bytes | None = None  # the earlier sidecar, put back if the model does not land
    sidecar_written = model_landed = False
    try:
        # beside the file a link points to, where the loader finds it (it was left beside the link,
        # so the file itself kept the earlier model's sidecar)
        sidecar = FORMATS[variant.format].sidecar(atomic.written_path(target))
        with atomic.atomic_path(target) as tmp:
            convert(model, tmp, calibration, meta)
            result.size_bytes = tmp.stat().st_size
            if not result.size_bytes:
                raise ValueError("the converter wrote an empty file")
            candidate = load_generator(tmp).generate(parity_latents)
            if not np.isfinite(candidate).all():
                raise ValueError("the exported model outputs NaN or inf")
            result.parity = Parity.between(reference, candidate)
            if result.parity.mean_abs > variant.mean_abs_tolerance:
                raise ValueError(f"mean abs error {result.parity.mean_abs:.2e} is over "
                                 f"{variant.mean_abs_tolerance:g}")
            if sidecar is not None:  # before the model: never one without it
                replaced_sidecar = sidecar.read_bytes() if sidecar.is_file() else None
                atomic.write_text(sidecar, json.dumps(meta, indent=2) + "\n")
                sidecar_written = True
        model_landed = True
        result.samples = candidate[:SIDE_BY_SIDE]  # in the side-by-side picture: files that passed
    except Exception as error:  # noqa: BLE001 - any failure of one variant is reported, not fatal
        result.error = _failure(error)
    finally:  # the model's rename failed (or Ctrl-C came between): the new sidecar would describe
        if sidecar_written and not model_landed:  # the earlier model, or no model at all
            if replaced_sidecar is None:
                sidecar.unlink(missing_ok=True)
            else:
                atomic.write_bytes(sidecar, replaced_sidecar)
    return result
