"""Image helpers shared by training and generation (numpy + pillow only, no TensorFlow)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from runegen.core.atomic import atomic_path
from runegen.core.errors import RunegenError

IMAGE_SIZE = 28  # every glyph runegen trains on or draws is 28x28, one channel
IMAGE_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 1)


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Generator output in [-1, 1], shape (N, H, W[, 1]) -> uint8 (N, H, W); NaN as black."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim != 3:
        raise RunegenError(f"expected images of shape (n, height, width[, 1]), got {images.shape}")
    return np.clip(np.rint((np.nan_to_num(images, nan=-1.0) + 1.0) * 127.5), 0, 255).astype(np.uint8)


BACKGROUND = 40  # the grid's gray: a tile of it is an empty place


def grid(images_uint8: np.ndarray, columns: int | None = None, pad: int = 2, scale: int = 3) -> Image.Image:
    """Tile (N, H, W) uint8 glyphs (or (N, H, W, 1)) on a dark grey background, upscaled for a
    person to read; at most N columns."""
    images_uint8 = np.asarray(images_uint8)
    if images_uint8.ndim == 4 and images_uint8.shape[-1] == 1:
        images_uint8 = images_uint8[..., 0]
    if images_uint8.ndim != 3 or not len(images_uint8):
        raise RunegenError(f"expected one or more images of shape (height, width), got {images_uint8.shape}")
    if images_uint8.dtype != np.uint8:  # generate's floats in [-1, 1] drew black tiles
        raise RunegenError(f"expected uint8 images, got {images_uint8.dtype}: to_uint8 turns generate's output "
                           "into them")
    if columns is not None and (not isinstance(columns, (int, np.integer)) or columns < 1):
        raise RunegenError(f"columns must be a whole number >= 1, got {columns!r}")
    for name, value, least in (("pad", pad, 0), ("scale", scale, 1)):
        if not isinstance(value, (int, np.integer)) or value < least:
            raise RunegenError(f"{name} must be a whole number >= {least}, got {value!r}")
    count, height, width = images_uint8.shape
    columns = min(columns or math.ceil(math.sqrt(count)), count)
    rows = math.ceil(count / columns)
    canvas = np.full((rows * (height + pad) + pad, columns * (width + pad) + pad), BACKGROUND, np.uint8)
    for index, glyph in enumerate(images_uint8):
        top = pad + (index // columns) * (height + pad)
        left = pad + (index % columns) * (width + pad)
        canvas[top:top + height, left:left + width] = glyph
    image = Image.fromarray(canvas, mode="L")
    return image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)


def save_png(image: Image.Image, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def save_gif(frames: Sequence[Image.Image], path: str | Path, ms_per_frame: int = 300) -> None:
    with atomic_path(path) as tmp:
        frames[0].save(tmp, format="GIF", save_all=True, append_images=list(frames[1:]),
                       duration=ms_per_frame, loop=0)
