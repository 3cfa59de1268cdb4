"""Image helpers shared by training and generation (numpy + pillow only, no TensorFlow)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from runegen.core.atomic import atomic_path

IMAGE_SIZE = 28  # every glyph runegen trains on or draws is 28x28, one channel
IMAGE_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 1)


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Generator output in [-1, 1], shape (N, 28, 28[, 1]) -> uint8 (N, 28, 28)."""
    images = np.asarray(images, dtype=np.float32).reshape(len(images), *np.shape(images)[1:3])
    return np.clip(np.rint((images + 1.0) * 127.5), 0, 255).astype(np.uint8)


BACKGROUND = 40  # the grid's gray: a tile of it is an empty place


def grid(images_uint8: np.ndarray, columns: int | None = None, pad: int = 2, scale: int = 3) -> Image.Image:
    """Tile (N, H, W) uint8 glyphs on a dark grey background, upscaled for a person to read."""
    count, height, width = images_uint8.shape
    columns = columns or math.ceil(math.sqrt(count))
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
