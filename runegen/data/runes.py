"""The built-in data set: the 24 Elder Futhark runes, drawn procedurally as if by hand.

Each rune is a few staves and twigs (straight polylines) in a unit box, x right, y down.
A sample is that skeleton with jittered vertices, posed by a small random affine map, drawn
with round joints at 4x supersampling, box-filtered down to 28x28 and finally bent by a gentle
elastic field. Nothing is ever mirrored: a flipped rune is a different letter (or none).

Every sample has its own generator seeded by (seed, class, sample), so output is reproducible
byte for byte and asking for more samples per class only appends to each class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

Point = tuple[float, float]
Polyline = tuple[Point, ...]


@dataclass(frozen=True)
class Rune:
    name: str
    char: str
    strokes: tuple[Polyline, ...]


def _rune(name: str, char: str, *strokes: Polyline) -> Rune:
    return Rune(name, char, strokes)


# Skeletons in futhark order. Staves run the full height (y 0..1); most runes are narrower
# than tall (x about 0.2..0.8) as carved, the two-stave ones wider so their inner bars stay open.
_STAVE = ((.5, 0), (.5, 1))
RUNES: tuple[Rune, ...] = (
    _rune("fehu", "ᚠ", ((.32, 0), (.32, 1)), ((.32, .34), (.74, .04)), ((.32, .64), (.74, .34))),  # rising
    _rune("uruz", "ᚢ", ((.28, 1), (.28, 0), (.72, .32), (.72, 1))),  # right leg slopes from the top
    _rune("thurisaz", "ᚦ", ((.32, 0), (.32, 1)), ((.32, .24), (.72, .5), (.32, .76))),  # mid-stave thorn
    _rune("ansuz", "ᚨ", ((.32, 0), (.32, 1)), ((.32, .04), (.74, .34)), ((.32, .34), (.74, .64))),  # falling
    _rune("raidho", "ᚱ", ((.3, 0), (.3, 1)), ((.3, 0), (.7, .25), (.3, .5), (.72, 1))),  # angular R
    _rune("kaunan", "ᚲ", ((.7, .12), (.3, .5), (.7, .88))),  # <
    _rune("gebo", "ᚷ", ((.2, .08), (.8, .92)), ((.8, .08), (.2, .92))),  # X
    _rune("wunjo", "ᚹ", ((.32, 0), (.32, 1)), ((.32, 0), (.72, .22), (.32, .44))),  # flag at the top
    _rune("hagalaz", "ᚺ", ((.25, 0), (.25, 1)), ((.75, 0), (.75, 1)), ((.25, .32), (.75, .68))),  # slanted H
    _rune("naudiz", "ᚾ", _STAVE, ((.26, .34), (.74, .62))),  # stave crossed by a falling bar
    _rune("isaz", "ᛁ", _STAVE),
    _rune("jera", "ᛃ", ((.46, .04), (.2, .32), (.46, .6)), ((.54, .4), (.8, .68), (.54, .96))),  # < over >
    _rune("eihwaz", "ᛇ", ((.26, .72), (.5, 1), (.5, 0), (.74, .28))),  # a hook at each end
    _rune("perthro", "ᛈ", ((.28, 0), (.28, 1)), ((.28, 0), (.5, .3), (.74, .02)),
          ((.28, 1), (.5, .7), (.74, .98))),  # cup on its side
    _rune("algiz", "ᛉ", _STAVE, ((.2, .06), (.5, .44), (.8, .06))),  # elk antlers
    _rune("sowilo", "ᛊ", ((.66, 0), (.3, .44), (.7, .56), (.34, 1))),  # lightning
    _rune("tiwaz", "ᛏ", _STAVE, ((.2, .32), (.5, 0), (.8, .32))),  # arrow up
    _rune("berkanan", "ᛒ", ((.3, 0), (.3, 1)), ((.3, 0), (.68, .25), (.3, .5), (.68, .75), (.3, 1))),
    _rune("ehwaz", "ᛖ", ((.24, 1), (.24, 0), (.5, .4), (.76, 0), (.76, 1))),  # M
    _rune("mannaz", "ᛗ", ((.18, 0), (.18, 1)), ((.82, 0), (.82, 1)),
          ((.18, 0), (.82, .64)), ((.82, 0), (.18, .64))),  # staves joined by a high X
    _rune("laguz", "ᛚ", ((.36, 0), (.36, 1)), ((.36, 0), (.74, .4))),  # one falling twig
    _rune("ingwaz", "ᛜ", ((.5, .2), (.78, .5), (.5, .8), (.22, .5), (.5, .2))),  # small diamond
    _rune("dagaz", "ᛞ", ((.12, 0), (.12, 1)), ((.88, 0), (.88, 1)),
          ((.12, 0), (.88, 1)), ((.88, 0), (.12, 1))),  # bowtie between staves
    _rune("othala", "ᛟ", ((.22, 1), (.78, .34), (.5, 0), (.22, .34), (.78, 1))),  # diamond on crossed legs
)
CLASS_NAMES: tuple[str, ...] = tuple(rune.name for rune in RUNES)

SIZE = 28
SUPERSAMPLE = 4
GLYPH_HEIGHT = 16.5  # skeleton px at 28x28; with the pen, ~19 px like MNIST digits in their 20x20 box


def render_runes(samples_per_class: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, 28, 28), white glyph on black like MNIST, and int32 labels (N,), ordered class by class.

    Sample i of class c comes from its own generator seeded [seed, c, i]: reproducible, and a larger
    samples_per_class only appends to each class.
    """
    count = len(RUNES) * samples_per_class
    drawings, noise = np.empty((count, SIZE, SIZE), np.float32), np.empty((count, 2, SIZE, SIZE))
    for c, rune in enumerate(RUNES):
        for i in range(samples_per_class):
            rng = np.random.default_rng([seed, c, i])
            drawings[c * samples_per_class + i] = _drawing(rune, rng)
            noise[c * samples_per_class + i] = rng.normal(size=(2, SIZE, SIZE))  # its elastic bend's draw
    labels = np.repeat(np.arange(len(RUNES), dtype=np.int32), samples_per_class)
    return _elastic(drawings, noise), labels


def _drawing(rune: Rune, rng: np.random.Generator) -> np.ndarray:
    """`rune` wobbled, posed and drawn with a random pen, at 28x28 (float32, 0..255), before its bend."""
    strokes = _wobble(rune.strokes, rng)
    pose = _random_pose(rng)
    width = rng.uniform(2.1, 3.0) * SUPERSAMPLE  # pen width in supersampled px
    posed = [stroke @ pose[:, :2].T + pose[:, 2] for stroke in strokes]
    canvas = _draw(_keep_inside(posed, width), width)
    small = canvas.resize((SIZE, SIZE), Image.Resampling.BOX)  # box filter = area coverage
    return np.asarray(small, np.float32)


def _wobble(strokes: tuple[Polyline, ...], rng: np.random.Generator) -> list[np.ndarray]:
    """Jitter every distinct vertex once, so joints shared by two strokes stay joined."""
    points = sorted({p for stroke in strokes for p in stroke})
    offsets = dict(zip(points, rng.normal(0.0, 0.022, (len(points), 2))))
    return [np.array([np.add(p, offsets[p]) for p in stroke]) for stroke in strokes]


def _random_pose(rng: np.random.Generator) -> np.ndarray:
    """2x3 affine map from the unit box to supersampled pixels: scale, shear, small tilt, shift.

    Rotation stays within +-8 degrees and scales stay positive, so a rune is never mirrored.
    """
    angle = np.deg2rad(rng.uniform(-8, 8))
    rotate = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    shear = np.array([[1.0, rng.uniform(-0.15, 0.15)], [0.0, 1.0]])
    scale = GLYPH_HEIGHT * SUPERSAMPLE * rng.uniform(0.9, 1.04) * np.diag([rng.uniform(0.9, 1.1), 1.0])
    linear = rotate @ shear @ scale
    centre = SUPERSAMPLE * (SIZE / 2 + rng.uniform(-1.25, 1.25, 2))
    return np.column_stack([linear, centre - linear @ [0.5, 0.5]])  # unit-box centre -> centre


def _keep_inside(strokes: list[np.ndarray], width: float, margin: float = 3.0) -> list[np.ndarray]:
    """Shift a posed glyph back inside the frame, leaving `margin` px for the elastic bend.

    The random pose rarely pushes a wide or tilted rune over the edge; clipping it would cut a twig.
    """
    points = np.concatenate(strokes)
    low, high = points.min(0) - width / 2, points.max(0) + width / 2
    inner = (margin * SUPERSAMPLE, (SIZE - margin) * SUPERSAMPLE)
    shift = np.maximum(inner[0] - low, 0) + np.minimum(inner[1] - high, 0)
    return [stroke + shift for stroke in strokes]


def _draw(strokes: list[np.ndarray], width: float) -> Image.Image:
    """Thick white polylines on black; a disk at each vertex gives round caps and joints."""
    canvas = Image.new("L", (SIZE * SUPERSAMPLE,) * 2, 0)
    pen = ImageDraw.Draw(canvas)
    r = width / 2
    for stroke in strokes:
        pen.line([tuple(p) for p in stroke], fill=255, width=round(width))
        for x, y in stroke:
            pen.ellipse((x - r, y - r, x + r, y + r), fill=255)
    return canvas


def _elastic(images: np.ndarray, noise: np.ndarray, amount: float = 0.6, smooth: float = 4.0) -> np.ndarray:
    """Bend straight strokes slightly with a smooth random displacement field (Simard et al. 2003):
    images (N, 28, 28) float32, `noise` (N, 2, 28, 28) standard normal draws, one field each; uint8 out.

    `amount` is the RMS displacement in px; `smooth` the Gaussian sigma that keeps it low-frequency.
    The fields are smoothed all at once (the same arithmetic per image as one at a time).
    """
    from scipy import ndimage  # training-only dependency; the edge install can still read CLASS_NAMES

    fields = ndimage.gaussian_filter(noise, (0, 0, smooth, smooth), mode="wrap")
    rows, cols = np.mgrid[:SIZE, :SIZE].astype(np.float64)
    bent = np.empty(images.shape, np.float32)
    for k, (image, field) in enumerate(zip(images, fields)):
        field *= amount / field.std()
        bent[k] = ndimage.map_coordinates(image, [rows + field[0], cols + field[1]], order=1, mode="constant")
    return np.clip(np.rint(bent), 0, 255).astype(np.uint8)
