"""Where a bench's files are: the trained .keras source and the folder of its exports (a run's
export/, a model folder's own files beside its .keras, or the folder of one exported file), and the
variants exported where missing (TensorFlow's part, where it is installed)."""

from __future__ import annotations

from pathlib import Path

from runegen.core.atomic import probe_write
from runegen.core.errors import ModelFileError, reason
from runegen.core.formats import BY_SUFFIX, EXPORT_FORMATS, EXPORTED_SUFFIXES, exported_files


def locate(model: Path) -> tuple[Path | None, Path]:
    """(the .keras generator or None, the folder of exported files) for MODEL.keras, a run
    folder (its exports in export/), a model folder (its exports beside generator.keras, as in
    runegen/models/), a folder of exported files, or one exported file (in its folder)."""
    fmt = BY_SUFFIX.get(model.suffix.lower())
    if model.is_file() and fmt is not None and fmt.variants:  # an exported file
        return None, model.parent
    if model.is_file() and fmt is not None:  # a trained file: where its folder's exports are
        return model, _exports_of(model)
    if model.is_dir():
        keras_path = model / "generator.keras"
        if keras_path.is_file():
            return keras_path, _exports_of(keras_path)
        if exported_files(model, "generator"):
            return None, model
        raise ModelFileError(f"{model}: no generator.keras and no exported {EXPORTED_SUFFIXES} files in it")
    if model.exists():
        raise ModelFileError(f"{model}: not a model (give MODEL.keras, an exported {EXPORTED_SUFFIXES} file, "
                             "a run folder or an export folder)")
    raise ModelFileError(f"{model}: no such file or folder (give MODEL.keras, an exported file, a run "
                         "folder or an export folder)")


def _exports_of(keras_path: Path) -> Path:
    """The folder of a .keras file's exports: beside it in a model folder (its own exported files
    and no export/ folder there, as in runegen/models/), else its run's export/ folder."""
    folder, export_dir = keras_path.parent, keras_path.parent / "export"
    if export_dir.exists() and not export_dir.is_dir():  # was a FileExistsError traceback from mkdir
        raise ModelFileError(f"{export_dir} is a file, where bench finds and writes {keras_path.name}'s "
                             "exports; move it")
    # Its own exports' names only: another model's file beside it would be benched against it.
    own = any((folder / v.filename(keras_path.stem)).is_file() for f in EXPORT_FORMATS.values() for v in f.variants)
    return folder if own and not export_dir.is_dir() else export_dir


def exports_missing_variants(keras_path: Path | None, export_dir: Path) -> bool:
    """Whether the bench exports the variants not there yet (where TensorFlow is): into a run's
    export/ folder, never into a model folder, whose files lie beside its .keras (the shipped
    models, inside the installed package, among them): that one is benched as it is."""
    return keras_path is not None and export_dir != keras_path.parent


def export_missing(keras_path: Path, export_dir: Path) -> list[str]:
    """Export the registry's variants that are not in export_dir yet (needs TensorFlow)."""
    from runegen.export import export, load_keras_generator

    missing = [v for f in EXPORT_FORMATS.values() for v in f.variants
               if not (export_dir / v.filename(keras_path.stem)).exists()]
    if missing:
        try:  # before the conversions (a read-only run folder was a PermissionError traceback)
            export_dir.mkdir(parents=True, exist_ok=True)
            probe_write(export_dir)
        except OSError as error:
            raise ModelFileError(f"{export_dir}: cannot write the {len(missing)} missing export(s) there "
                                 f"({reason(error)}); export them elsewhere (runegen export --out) and bench that "
                                 "folder") from None
        # The folder's parity pictures are export's, of every variant it wrote: not replaced by
        # pictures of the few variants added here.
        results = export(load_keras_generator(keras_path), missing, export_dir, pictures=False)
        return [f"{r.variant.format} {r.variant.name}: {r.error}" for r in results if not r.ok]
    return []


def export_stem(export_dir: Path) -> str:
    """The stem of the exported files in `export_dir` (`<stem>_f32.onnx`, say); "generator" where none is found."""
    for variant in (v for fmt in EXPORT_FORMATS.values() for v in fmt.variants if v.name == "f32"):
        for path in sorted(export_dir.glob(variant.filename("*"))):
            return path.name[:-len(variant.filename(""))]
    return "generator"
