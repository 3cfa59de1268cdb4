"""Any folder of images: one subfolder per class, or a flat folder (one class).

Images are converted to grayscale 28x28. Unreadable files are skipped and counted, not fatal.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from runegen.core.errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def load_image_folder(root: Path) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    from PIL import Image, UnidentifiedImageError

    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    classes = [(d.name, files) for d in class_dirs if (files := _images_in(d))]
    loose = _images_in(root)
    if not classes and loose:
        classes = [(root.name, loose)]
    elif classes and loose:  # one layout or the other: a class's images never lie loose at the top
        print(f"warning: ignored {len(loose)} image file(s) at the top of {root}: with subfolders, "
              "each subfolder is a class and only their images are read", file=sys.stderr)
    if not classes:
        raise DataError(f"{root}: no images found ({', '.join(sorted(IMAGE_SUFFIXES))})")

    images, labels, skipped = [], [], 0
    for label, (_, files) in enumerate(classes):
        for file in files:
            try:
                with Image.open(file) as image:
                    glyph = image.convert("L").resize((28, 28), Image.Resampling.LANCZOS)
                    images.append(np.asarray(glyph, dtype=np.uint8))
                labels.append(label)
            except (OSError, UnidentifiedImageError, ValueError):
                skipped += 1
    if not images:
        raise DataError(f"{root}: none of the {skipped} image files could be read")
    if skipped:
        print(f"warning: skipped {skipped} unreadable image file(s) in {root}", file=sys.stderr)
    class_names = tuple(name for name, _ in classes)
    return np.stack(images), np.asarray(labels, dtype=np.int32), class_names


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
