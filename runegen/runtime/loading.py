"""What the format loaders (onnx.py, tflite.py, keras_model.py) share: telling a generator by its
shapes, the metadata JSON beside a model file, and running a fixed-batch model over any number of
latents."""

from __future__ import annotations

import errno
import json
from pathlib import Path
from typing import Callable

import numpy as np

from runegen.core.errors import ModelFileError, reason
from runegen.core.images import IMAGE_SHAPE


def generator_latent_dim(input_shapes, output_shapes) -> int | None:
    """The latent size if the shapes are a generator's ((batch, latent) -> (batch, 28, 28, 1)), else None.

    A latent size the model leaves open (a symbolic dimension) is returned as 0."""
    if len(input_shapes) != 1 or len(output_shapes) != 1:
        return None
    (inp,), (out,) = input_shapes, output_shapes
    if len(inp) != 2 or len(out) != 4 or tuple(out[1:]) != IMAGE_SHAPE:
        return None
    return int(inp[1]) if isinstance(inp[1], (int, np.integer)) and inp[1] > 0 else 0


def not_a_generator(path: Path, input_shapes, output_shapes) -> ModelFileError:
    return ModelFileError(f"{path} is not a runegen generator (input {_shape_text(input_shapes)}, output "
                      f"{_shape_text(output_shapes)}; expected input (None, latent), output (None, 28, 28, 1))")


def _shape_text(shapes) -> str:
    shapes = [tuple(None if d in (None, -1) or isinstance(d, str) else int(d) for d in s) for s in shapes]
    return ", ".join(map(str, shapes)) if shapes else "none"


def json_beside(path: Path, name: str, kind: type):
    """The JSON file `name` ("{name}" stands for the model's file name) beside the model, or
    beside the file a link points to; None if there is none. Unreadable or of another kind: a
    ModelFileError, never read as "no metadata"."""
    candidates = [folder.with_name(name.format(name=folder.name)) for folder in (path, path.resolve())]
    beside = next((candidate for candidate in candidates if _is_file(candidate)), None)
    if beside is None:
        return None
    try:
        loaded = json.loads(beside.read_text(encoding="utf-8"))
    except OSError as error:  # was "not valid JSON (Permission denied)"
        raise ModelFileError(f"{beside}: cannot read ({reason(error)})") from None
    except ValueError as error:  # not JSON, or not UTF-8
        raise ModelFileError(f"{beside}: not valid JSON ({reason(error)})") from None
    if not isinstance(loaded, kind):
        raise ModelFileError(f"{beside}: expected a JSON {kind.__name__}, got {type(loaded).__name__}")
    return loaded


def _is_file(path: Path) -> bool:
    """Path.is_file, where a name past the file system's limit (a model named near it, plus
    ".json") is no file rather than an OSError."""
    try:
        return path.is_file()
    except OSError as error:
        if error.errno == errno.ENAMETOOLONG:
            return False
        raise


def in_chunks(run: Callable[[np.ndarray], np.ndarray], z: np.ndarray, size: int | None) -> np.ndarray:
    """Run a model whose batch size is fixed at `size` (None: any batch) over any number of latents."""
    if size is None or len(z) == size:
        return run(z)
    outputs = []
    for start in range(0, len(z), size):
        chunk = z[start:start + size]
        padded = np.concatenate([chunk, np.zeros((size - len(chunk), z.shape[1]), z.dtype)])
        outputs.append(run(padded)[:len(chunk)])
    return np.concatenate(outputs)
