"""The built-in rune data set: the right 24 classes, MNIST-like images, reproducible and distinct."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("scipy")  # the elastic bend needs it; it ships with the [train] extra
from runegen.data import runes  # noqa: E402

FUTHARK = (
    ("fehu", "ᚠ"), ("uruz", "ᚢ"), ("thurisaz", "ᚦ"), ("ansuz", "ᚨ"), ("raidho", "ᚱ"), ("kaunan", "ᚲ"),
    ("gebo", "ᚷ"), ("wunjo", "ᚹ"), ("hagalaz", "ᚺ"), ("naudiz", "ᚾ"), ("isaz", "ᛁ"), ("jera", "ᛃ"),
    ("eihwaz", "ᛇ"), ("perthro", "ᛈ"), ("algiz", "ᛉ"), ("sowilo", "ᛊ"), ("tiwaz", "ᛏ"), ("berkanan", "ᛒ"),
    ("ehwaz", "ᛖ"), ("mannaz", "ᛗ"), ("laguz", "ᛚ"), ("ingwaz", "ᛜ"), ("dagaz", "ᛞ"), ("othala", "ᛟ"),
)
N_CLASSES = len(FUTHARK)


@pytest.fixture(scope="module")
def small():
    return runes.render_runes(samples_per_class=8, seed=0)


@pytest.fixture(scope="module")
def class_means():
    """Mean image per class in [0, 1]; 100 samples keep the sampling noise of a mean low."""
    images, labels = runes.render_runes(samples_per_class=100, seed=0)
    pixels = images.astype(np.float64) / 255
    return np.stack([pixels[labels == c].mean(0) for c in range(N_CLASSES)])


def test_the_24_elder_futhark_runes_in_order():
    assert [(rune.name, rune.char) for rune in runes.RUNES] == list(FUTHARK)
    assert runes.CLASS_NAMES == tuple(name for name, _ in FUTHARK)
    assert len({rune.strokes for rune in runes.RUNES}) == N_CLASSES


def test_strokes_are_polylines_in_the_unit_box():
    for rune in runes.RUNES:
        assert rune.strokes, rune.name
        for stroke in rune.strokes:
            assert len(stroke) >= 2, rune.name
            assert all(0 <= x <= 1 and 0 <= y <= 1 for x, y in stroke), rune.name


def test_shapes_and_dtypes(small):
    images, labels = small
    assert images.shape == (N_CLASSES * 8, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (N_CLASSES * 8,) and labels.dtype == np.int32


def test_labels_are_ordered_class_by_class_and_balanced(small):
    _, labels = small
    np.testing.assert_array_equal(labels, np.repeat(np.arange(N_CLASSES), 8))


def test_white_glyph_on_black_like_mnist(small):
    images, _ = small
    assert (images.max(axis=(1, 2)) >= 200).all()  # every sample has a bright stroke
    assert (np.median(images, axis=(1, 2)) == 0).all()  # mostly background
    corners = images[:, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert corners.max() <= 10
    rim = np.concatenate([images[:, 0], images[:, -1], images[:, :, 0], images[:, :, -1]], axis=1)
    assert rim.max() < 128  # nothing clipped at the frame edge


def test_glyphs_are_about_mnist_height(small):
    images, _ = small
    rows = images.max(axis=2) > 64
    heights = 28 - rows.argmax(1) - rows[:, ::-1].argmax(1)
    tall = heights[np.isin(np.repeat(np.arange(N_CLASSES), 8), [0, 10])]  # fehu and isaz: full staves
    assert 15 <= np.median(tall) <= 22


def test_deterministic_and_seed_dependent():
    first, labels = runes.render_runes(samples_per_class=3, seed=5)
    again, _ = runes.render_runes(samples_per_class=3, seed=5)
    other, _ = runes.render_runes(samples_per_class=3, seed=6)
    assert first.tobytes() == again.tobytes()
    assert not np.array_equal(first, other)


def test_more_samples_per_class_keeps_the_earlier_ones():
    few, few_labels = runes.render_runes(samples_per_class=2, seed=1)
    many, many_labels = runes.render_runes(samples_per_class=5, seed=1)
    for c in range(N_CLASSES):
        np.testing.assert_array_equal(few[few_labels == c], many[many_labels == c][:2])


def test_samples_vary_within_a_class(small):
    images, labels = small
    for c in range(N_CLASSES):
        assert len({im.tobytes() for im in images[labels == c]}) == 8


def test_class_means_are_clearly_distinct(class_means):
    """Pairwise L2 distance between class-mean images (pixels in [0, 1]) stays above 1.5.

    If two classes shared a skeleton, their means would differ only by sampling noise: redrawing a
    class from fresh generators moves its 100-sample mean by 0.6-1.15. The closest real pairs
    (wunjo/laguz 2.1, algiz/tiwaz and raidho/berkanan 2.2) sit well above, so 1.5 separates
    "a different rune" from "the same rune drawn twice".
    """
    diffs = class_means[:, None] - class_means[None]
    distances = np.sqrt((diffs**2).sum(axis=(2, 3)))
    np.fill_diagonal(distances, np.inf)
    i, j = np.unravel_index(distances.argmin(), distances.shape)
    assert distances[i, j] > 1.5, (runes.CLASS_NAMES[i], runes.CLASS_NAMES[j], distances[i, j])


def test_fehu_is_not_mirrored(class_means):
    """Fehu's twigs point right; its mirror image must be far from it (no flip augmentation)."""
    fehu = class_means[runes.CLASS_NAMES.index("fehu")]
    assert np.sqrt(((fehu - fehu[:, ::-1]) ** 2).sum()) > 3.0
    columns = fehu.sum(axis=0)
    stave = columns.argmax()
    assert stave < 14  # the stave stands left of centre ...
    assert columns[stave + 3:].sum() > 3 * columns[:stave - 2].sum()  # ... and the twigs reach right


def test_rotation_stays_small(small):
    """Isaz is a lone stave: tilt (plus shear and wobble) must keep it near upright, never a bar."""
    images, labels = small
    for image in images[labels == runes.CLASS_NAMES.index("isaz")]:
        ys, xs = np.nonzero(image > 128)
        assert np.ptp(ys) > 2 * np.ptp(xs)
