"""`GlyphDataset` and `load_dataset`: every source (runes.py, mnist.py, folder.py) as 28x28
float32 glyphs in [-1, 1]."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runegen.core.errors import DataError
from runegen.data import folder, mnist, runes

BLANK_CONTRAST = 8  # an image whose grays span less than this (of 255) at 28x28 holds no glyph


@dataclass(frozen=True)
class GlyphDataset:
    name: str
    images: np.ndarray  # float32 (N, 28, 28, 1) in [-1, 1]
    labels: np.ndarray  # int32 (N,)
    class_names: tuple[str, ...]
    built_in: bool = False  # the runes drawn by runegen itself, not files (a folder may be named "runes")
    spec: str = ""  # what load_dataset was given ("../x" where name is "x"); "": name

    @property
    def asked(self) -> str:
        """The data as the user gave it, wherever it is named to them (a DataError's start, per
        runegen/core/errors.py; evaluate's title and JSON; notes): `--data ../x` is "../x", not "x"."""
        return self.spec or self.name

    def __len__(self) -> int:
        return len(self.images)

    @property
    def ground(self) -> float:
        """The background of the images: -1 (black, as runes and MNIST) or 1 (white: dark ink on
        paper, in a folder, which keeps its polarity)."""
        return 1.0 if dark_on_light(self.images) else -1.0


def to_unit_range(images_uint8: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 28, 28, 1) in [-1, 1]."""
    return (images_uint8.astype(np.float32)[..., None] - 127.5) / 127.5


def load_dataset(spec: str, samples_per_class: int | None = None, seed: int = 0) -> GlyphDataset:
    """Resolve `--data`: "runes", "mnist", an MNIST .npz / idx folder, or an image folder.
    `samples_per_class` and `seed` draw the built-in runes (the count has no default here: the
    run's is TrainConfig's); the other sources ignore them."""
    if spec == "runes":
        if samples_per_class is None:
            raise ValueError("the built-in runes need samples_per_class (TrainConfig.samples_per_class: a run's)")
        for name, value, least in (("samples_per_class", samples_per_class, 1), ("seed", seed, 0)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
                raise ValueError(f"{name} must be a whole number >= {least}, got {value!r}")  # was numpy's own error
        images, labels = runes.render_runes(samples_per_class=samples_per_class, seed=seed)
        return GlyphDataset("runes", to_unit_range(images), labels, runes.CLASS_NAMES, built_in=True)
    if spec == "mnist":
        images, labels = mnist.load_mnist(mnist.find_default_mnist())
        return GlyphDataset("mnist", to_unit_range(images), *_digits_held(labels, "mnist"))

    path = Path(spec).expanduser()
    if not path.exists():
        raise DataError(f"{spec}: no such file or folder (expected 'runes', 'mnist' or a path)")
    if mnist.looks_like_mnist(path):
        images, labels = mnist.load_mnist(path)
        return GlyphDataset("mnist", to_unit_range(with_glyphs(images, path)), *_digits_held(labels, spec), spec=spec)
    if path.is_dir():
        try:
            images, labels, class_names = folder.load_image_folder(path)
        except DataError as error:
            archives = sorted(path.glob("*.npz"))
            hint = f" (for MNIST, give the file itself: {archives[0]})" if archives and "no images" in str(error) else ""
            raise DataError(f"{error}{hint}") from None
        return GlyphDataset(path.name, to_unit_range(with_glyphs(images, path)), labels, class_names, spec=spec)
    idx_file = any(path.name.startswith(stem.split("-")[0]) and "idx" in path.name for stem in mnist.IDX_STEMS)
    raise DataError(f"{spec}: not an MNIST .npz file nor a folder of images"
                    + (" (for MNIST's idx files, give the folder that holds all four)" if idx_file else ""))


def _digits_held(labels: np.ndarray, source: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """(labels, class names) of the digits an MNIST file holds: one without some digits claimed ten
    classes (an empty preview row each, class coverage that could never reach 10 of 10), where an
    image folder leaves an empty class out."""
    held = np.unique(labels)
    if len(held) == len(mnist.CLASS_NAMES):
        return labels, mnist.CLASS_NAMES
    names = tuple(mnist.CLASS_NAMES[digit] for digit in held)
    print(f"note: {source} holds the digits {', '.join(names)} only: {len(names)} classes", file=sys.stderr)
    return np.searchsorted(held, labels).astype(np.int32), names


def frames(images: np.ndarray) -> np.ndarray:
    """(N, 208) the pixels of each image's 2-pixel frame; images (N, 28, 28) or (N, 28, 28, 1)."""
    frame = np.ones(images.shape[1:3], bool)
    frame[2:-2, 2:-2] = False
    return images.reshape(len(images), *images.shape[1:3])[:, frame]


def dark_on_light(images: np.ndarray) -> bool:
    """Whether glyphs in [-1, 1] are dark on a light ground (scans, most fonts): their 2-pixel
    frames are light on average. The runes and MNIST are light on black."""
    return bool(frames(images).mean() > 0)


def with_glyphs(images: np.ndarray, source: Path) -> np.ndarray:
    """`images` (uint8 (N, 28, 28)), the blank ones counted on stderr; none but blank ones refused."""
    blank = int(np.sum(np.ptp(images, axis=(1, 2)) < BLANK_CONTRAST))
    if blank == len(images):
        raise DataError(f"{source}: every image is one flat colour at 28x28, no glyph to learn")
    # A clear ground: 80% of the frame on one side (noise has neither). One polarity or the other:
    # G learns to draw both, and the metrics invert all images or none.
    frame = frames(images)
    light, dark = int(np.sum(np.mean(frame > 191, axis=1) >= 0.8)), int(np.sum(np.mean(frame < 64, axis=1) >= 0.8))
    if light and dark:
        print(f"warning: {light} of {len(images)} images in {source} are dark on a light ground, {dark} light "
              "on dark: a generator learns to draw both kinds", file=sys.stderr)
    if blank:
        print(f"warning: {blank} of {len(images)} images in {source} are one flat colour at 28x28 (grays spanning "
              f"under {BLANK_CONTRAST} of 255: no glyph), trained on as they are", file=sys.stderr)
    return images
