"""Any folder of images: one subfolder per class, or a flat folder (one class).

Each image becomes the 28x28 grayscale glyph a viewer shows: turned upright by its EXIF
orientation (phone photos of drawings), transparent pixels laid on a ground that sets off its ink
(a black glyph on a transparent ground would otherwise turn all black), 16-bit grays scaled rather
than clipped, and a non-square image padded with its border's colour rather than squashed.
Every frame of an animated GIF, PNG, WebP or AVIF and every page of a multi-page TIFF is an image of
its class, converted as a still one is (a JPEG's further frames are not: a phone's preview, depth
or gain map of the same photo). Files are picked by their suffix (IMAGE_SUFFIXES); a folder with
none names the suffixes its files have. Unreadable files (a file with a broken frame among them,
or a frame over Pillow's decompression-bomb limit, checked for each) are skipped, counted and
named, not fatal (images of one flat colour are counted, and kept, by dataset.py, for MNIST files
too). Hidden files and folders and macOS's `__MACOSX` (what unzipping
an archive made on a Mac leaves: `._name.png` files that are no images) are not read.
"""

from __future__ import annotations

import contextlib
import itertools
import sys
import warnings
from pathlib import Path

import numpy as np

from runegen.core.errors import DataError

IMAGE_SUFFIXES = {".png", ".apng", ".jpg", ".jpeg", ".jpe", ".jfif", ".bmp", ".gif", ".tif", ".tiff", ".webp",
                  ".avif", ".pbm", ".pgm", ".ppm", ".pnm", ".tga", ".ico"}  # still images and animations Pillow reads
FRAMES_READ = {"AVIF", "GIF", "PNG", "TIFF", "WEBP"}  # Pillow's formats whose every frame is an image
NOT_READ = ("__MACOSX",)  # besides hidden names
SHOWN = 3  # skipped files named in a warning


def load_image_folder(root: Path) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    from PIL import Image

    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and is_read(p))
    listed = [(d.name, _images_in(d)) for d in class_dirs]
    classes = [(name, files) for name, files in listed if files]
    without = [name for name, files in listed if not files]
    loose, by_folder = _images_in(root), bool(classes)
    if by_folder and loose:  # one layout or the other: a class's images never lie loose at the top
        print(f"warning: ignored {len(loose)} image file(s) at the top of {root}: with subfolders, "
              "each subfolder is a class and only their images are read", file=sys.stderr)
    if by_folder and without:  # a class dropped without a word before
        print(f"warning: left out folder(s) {_named(without)} of {root}: no image files directly in them "
              "(folders inside a class folder are not read)", file=sys.stderr)
    if not by_folder and loose:  # one class, named by the folder ("." and ".." by the folder they name)
        classes = [(root.name if root.name not in ("", ".", "..") else root.resolve().name, loose)]
    if not classes:
        deeper = " (folders inside its subfolders are not read)" if without else ""
        held = sorted({p.suffix.lower() for folder in (root, *class_dirs) for p in folder.iterdir()
                       if p.is_file() and p.suffix and is_read(p)})
        raise DataError(f"{root}: no images found ({', '.join(sorted(IMAGE_SUFFIXES))}){deeper}"
                        + (f"; files there end in {_named(held)}" if held else ""))

    white = _deep_white([file for _, files in classes for file in files])
    images, labels, skipped, animated = [], [], [], []
    for label, (_, files) in enumerate(classes):
        for file in files:
            try:
                with _opened(file) as image:  # one frame decoded at a time, each kept at 28x28
                    glyphs = [glyph(frame, white) for frame in _frames(image)]
            except _unreadable():  # a file broken part way is skipped whole, as any broken file
                skipped.append(file.relative_to(root).as_posix())
                continue
            images += glyphs
            labels += [label] * len(glyphs)
            if len(glyphs) > 1:
                animated.append((file.relative_to(root).as_posix(), len(glyphs)))
    why = f"broken, not readable, or over Pillow's {Image.MAX_IMAGE_PIXELS * 2:,}-pixel limit"
    if not images:
        ignored = f"; the {len(loose)} image file(s) at its top were ignored, as it has subfolders" \
            if by_folder and loose else ""
        raise DataError(f"{root}: none of the {len(skipped)} image files could be read ({why}: "
                        f"{_named(skipped)}){ignored}")
    if animated:  # said, as a file could hold frames that are no glyphs of their own (a drawing's steps)
        frames = sum(count for _, count in animated)
        print(f"note: read {frames} images from the frames or pages of {len(animated)} file(s) in {root}, each as "
              f"an image of its class: {_named([name for name, _ in animated])}", file=sys.stderr)
    if skipped:
        print(f"warning: skipped {len(skipped)} unreadable image file(s) in {root} ({why}): {_named(skipped)}",
              file=sys.stderr)
    labels = np.asarray(labels, dtype=np.int32)
    empty = [name for label, (name, _) in enumerate(classes) if not np.any(labels == label)]
    if empty:  # every file of theirs unreadable: no class without an image
        print(f"warning: left out class(es) {', '.join(empty)}: none of their images could be read", file=sys.stderr)
        kept = [label for label, (name, _) in enumerate(classes) if name not in empty]
        labels = np.searchsorted(kept, labels).astype(np.int32)
        classes = [classes[label] for label in kept]
    return np.stack(images), labels, tuple(name for name, _ in classes)


def glyph(image, deep_white: dict[str, float] | None = None) -> np.ndarray:
    """`image` (PIL) as the uint8 28x28 grayscale glyph a viewer shows (the module's docstring);
    `deep_white` the white of 16- and 32-bit integer grays by `_depth` (none: from this image's brightest)."""
    from PIL import Image, ImageOps

    gray = _grayscale(ImageOps.exif_transpose(image), deep_white)
    pixels = np.asarray(gray)
    ground = int(np.median(np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])))
    return np.asarray(ImageOps.pad(gray, (28, 28), Image.Resampling.LANCZOS, color=ground), dtype=np.uint8)


def _grayscale(image, deep_white: dict[str, float] | None = None):
    from PIL import Image

    if image.mode.startswith("I") or image.mode == "F":  # 16- or 32-bit grays: scaled, not clipped to 255
        values = np.asarray(image, np.float32)
        values = np.where(np.isfinite(values), values, 0.0)  # a float TIFF's NaN "no data": a warning, a flat image
        white = (deep_white or {}).get(_depth(image.mode)) if image.mode.startswith("I") else None
        top = (1.0 if image.mode == "F" and values.max() <= 1.0 else white or _full_scale(float(values.max())))
        return Image.fromarray(np.clip(np.rint(values * (255.0 / top)), 0, 255).astype(np.uint8))
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        alpha = np.asarray(rgba.getchannel("A"), np.float64)
        if alpha.min() < 255:  # laid on white under dark ink, on black under light ink
            ink = float((alpha * np.asarray(rgba.convert("L"), np.float64)).sum() / max(alpha.sum(), 1.0))
            ground = Image.new("RGBA", rgba.size, (255, 255, 255, 255) if ink < 128 else (0, 0, 0, 255))
            return Image.alpha_composite(ground, rgba).convert("L")
    return image.convert("L")


def _frames(image):
    """Each frame of `image` (the image itself, seeked to it), or `image` alone where its format's
    further frames are no images of their own (FRAMES_READ). A frame that cannot be reached raises
    OSError: on a broken one Pillow's plugins raise what comes (TypeError, KeyError, struct.error ...).
    One over Pillow's decompression-bomb limit raises its error before it is decoded, as the first
    frame's does on opening: Pillow checks only that one (a TIFF's later page may be any size)."""
    from PIL import Image

    yield image
    for index in itertools.count(1) if image.format in FRAMES_READ else ():
        try:
            image.seek(index)
        except EOFError:  # no frame more
            return
        except Exception as error:
            raise OSError(f"frame {index + 1}: {error}") from error
        limit = Image.MAX_IMAGE_PIXELS  # read now: None turns the check off, as in Pillow
        if limit and image.width * image.height > 2 * limit:
            raise Image.DecompressionBombError(f"frame {index + 1}: {image.width}x{image.height} pixels, "
                                               f"over the {2 * limit:,}-pixel limit")
        yield image


@contextlib.contextmanager
def _opened(file: Path):
    """The image at `file`, opened lazily; one over Pillow's warning limit but under its error
    limit is read without printing Pillow's warning raw, and so is one with broken metadata (a
    TIFF page's tags cut short: "Corrupt EXIF data", once for each tag, before the file was named
    among the skipped ones or read)."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
        with Image.open(file) as image:
            yield image


def _unreadable() -> tuple[type[Exception], ...]:
    """What Pillow raises for a file it cannot read (broken, not an image, over its error limit;
    SyntaxError: a broken PNG chunk or APNG frame, a traceback before)."""
    from PIL import Image, UnidentifiedImageError

    return OSError, SyntaxError, UnidentifiedImageError, ValueError, Image.DecompressionBombError


def _deep_white(files: list[Path]) -> dict[str, float]:
    """One white for a folder's 16-bit integer grays and one for its 32-bit ones (by `_depth`), each
    from the brightest pixel of them all: images of one source keep their relative brightness (a
    white from each image's own brightest made one with ink 4095 white and one with 4096 dark
    gray), and a 32-bit image with 18-bit values no longer sets the white of 16-bit ones (it made
    them black)."""
    brightest: dict[str, float] = {}
    for file in files:
        try:
            with _opened(file) as image:  # the header only, unless deep
                # Frames share the first one's mode but for a TIFF's pages (a GIF's are not decoded here)
                for frame in _frames(image) if image.mode.startswith("I") or image.format == "TIFF" else ():
                    if frame.mode.startswith("I"):
                        depth = _depth(frame.mode)
                        brightest[depth] = max(brightest.get(depth, 0.0), float(np.asarray(frame).max()))
        except _unreadable():
            continue  # skipped, and named, when the images are read
    return {depth: _full_scale(value) for depth, value in brightest.items()}


def _depth(mode: str) -> str:
    """Pillow's integer gray modes by their depth: "I;16", "I;16B", ... are 16-bit, "I" 32-bit."""
    return "16" if mode.startswith("I;16") else "32"


def _full_scale(brightest: float) -> float:
    """The white of the smallest usual bit depth (8, 10, 12, 14, 16, 20, 24, 32) that holds
    `brightest`: 12-bit data in a 16-bit file keeps its look. Scaling by 65535 above 255 made
    0..256 one gray step (blank) and 12-bit glyphs nearly black."""
    return next((2.0 ** bits - 1 for bits in (8, 10, 12, 14, 16, 20, 24) if brightest <= 2 ** bits - 1), 2.0 ** 32 - 1)


def is_read(path: Path) -> bool:
    """Whether the loader reads a file or folder of this name (hidden ones and __MACOSX it passes over)."""
    return not path.name.startswith(".") and path.name not in NOT_READ


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and is_read(p))


def _named(names: list[str]) -> str:
    return ", ".join(names[:SHOWN]) + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")
