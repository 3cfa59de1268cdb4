"""The offline metrics are checked against cases whose answer is known, not trusted.

One small classifier (60 runes per class, 4 epochs, a few seconds) serves every test; the real
images are other runes (data seed 1), split into two disjoint halves with every class in each.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("keras")
pytest.importorskip("scipy")

from scipy import ndimage  # noqa: E402

from runegen.quality import classifier as classifiers  # noqa: E402
from runegen.quality import metrics  # noqa: E402
from runegen.quality.scorer import compare  # noqa: E402
from runegen.data import load_dataset  # noqa: E402


@pytest.fixture(scope="module")
def classifier():
    return classifiers.train_classifier(load_dataset("runes", samples_per_class=60, seed=0), epochs=4, seed=0)


@pytest.fixture(scope="module")
def halves():
    images = load_dataset("runes", samples_per_class=20, seed=1).images  # class by class
    return images[0::2], images[1::2]


@pytest.fixture(scope="module")
def noise(halves):
    return np.random.default_rng(7).uniform(-1, 1, halves[1].shape).astype(np.float32)


def score(classifier, real, fake):
    return compare(classifier, real, fake, kid_subsets=20)


def blur(images, sigma):
    return ndimage.gaussian_filter(images, (0, sigma, sigma, 0))


def add_noise(images, std, seed=3):
    noisy = images + np.random.default_rng(seed).normal(0, std, images.shape)
    return np.clip(noisy, -1, 1).astype(np.float32)


def test_classifier_shape_and_held_out_accuracy(classifier):
    assert classifier.input_shape == (None, 28, 28, 1)
    assert classifier.get_layer("features").output.shape == (None, classifiers.FEATURE_DIM)
    assert classifier.output_shape == (None, 24)
    held_out = load_dataset("runes", samples_per_class=10, seed=1)
    assert classifiers.accuracy(classifier, held_out) > 0.7  # a tiny training run; the default one reaches ~0.99


def test_real_vs_real_is_close(classifier, halves, noise):
    real_a, real_b = halves
    same = score(classifier, real_a, real_b)
    versus_noise = score(classifier, real_a, noise)
    assert set(same) == {"fd", "kid", "kid_std", "precision", "recall", "density", "real_coverage",
                         "recognisability", "class_coverage", "num_classes", "n_real", "n_fake"}
    assert same["fd"] < 0.05 * versus_noise["fd"]
    assert abs(same["kid"]) < 0.05 * versus_noise["kid"]
    assert same["precision"] > 0.8 and same["recall"] > 0.8
    assert 0.7 < same["density"] < 1.3 and same["real_coverage"] > 0.8
    assert same["num_classes"] == 24 and same["n_real"] == same["n_fake"] == len(real_a)


def test_blur_increases_fd_monotonically(classifier, halves):
    real_a, real_b = halves
    fds = [score(classifier, real_a, blur(real_b, sigma))["fd"] for sigma in (0, 0.5, 1.0, 2.0)]
    assert all(a < b for a, b in zip(fds, fds[1:])), fds


def test_additive_noise_increases_fd_monotonically(classifier, halves):
    real_a, real_b = halves
    fds = [score(classifier, real_a, add_noise(real_b, std))["fd"] for std in (0, 0.25, 0.5, 1.0)]
    assert all(a < b for a, b in zip(fds, fds[1:])), fds


def test_pure_noise_is_neither_recognisable_nor_precise(classifier, halves, noise):
    real_a, real_b = halves
    result = score(classifier, real_a, noise)
    assert result["recognisability"] < 0.05
    assert result["precision"] < 0.05
    assert result["recall"] < 0.05
    assert result["density"] < 0.05 and result["real_coverage"] < 0.05
    blank = np.full_like(noise, -1.0)  # an all-black frame is no glyph either
    assert score(classifier, real_a, blank)["recognisability"] < 0.05


def test_same_inputs_same_numbers(classifier, halves):
    real_a, real_b = halves
    fake = blur(real_b, 1.0)
    assert score(classifier, real_a, fake) == score(classifier, real_a, fake)


def test_frechet_distance_of_known_gaussians():
    """FD between N(0, I) and N(m, 4 I) in d dims is |m|² + d (1 + 4 - 2·2) = |m|² + d."""
    rng = np.random.default_rng(0)
    d, n = 4, 200_000
    x = rng.normal(0, 1, (n, d))
    y = rng.normal(1.0, 2.0, (n, d))
    assert metrics.frechet_distance(x, y) == pytest.approx(d + d, rel=0.02)
    assert metrics.frechet_distance(x, x) == pytest.approx(0, abs=1e-6)


def test_kid_is_unbiased_near_zero_for_one_distribution():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(400, 8)), rng.normal(size=(400, 8))
    same, _ = metrics.kernel_distance(x, y, num_subsets=50, subset_size=200)
    shifted, _ = metrics.kernel_distance(x, y + 0.5, num_subsets=50, subset_size=200)
    assert abs(same) < 0.05 < 0.5 < shifted


def test_kid_of_two_whole_sets_is_one_estimate_whatever_their_order():
    """Sets no larger than a subset: every subset is both sets reordered, so KID is computed once."""
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(200, 8)), rng.normal(size=(200, 8)) + 0.3
    kid, std = metrics.kernel_distance(x, y)
    assert std == 0.0
    reordered, _ = metrics.kernel_distance(x[rng.permutation(200)], y[rng.permutation(200)])
    assert reordered == pytest.approx(kid, rel=1e-9)
    nearly_whole, _ = metrics.kernel_distance(x, y, num_subsets=20, subset_size=199)
    assert nearly_whole == pytest.approx(kid, rel=0.05)


def test_precision_recall_on_nested_sets():
    """Fakes drawn from a small part of the real cloud: precise, but with poor recall."""
    rng = np.random.default_rng(2)
    real = rng.normal(size=(500, 2))
    fake = rng.normal(scale=0.2, size=(500, 2))
    precision, recall = metrics.precision_recall(real, fake, k=3)
    assert precision > 0.95 and recall < 0.3


def test_density_and_coverage_on_nested_sets_and_one_distribution():
    """Fakes from the middle of the real cloud only: each as deep inside real neighbourhoods as a
    real sample (density about 1; the balls are small where real samples are dense), but they
    cover little of the cloud. Fakes from the real distribution: density about 1, coverage high
    (about 1 - e^-k for equal set sizes)."""
    rng = np.random.default_rng(2)
    real = rng.normal(size=(500, 2))
    crowded = metrics.density_coverage(real, rng.normal(scale=0.2, size=(500, 2)))
    same = metrics.density_coverage(real, rng.normal(size=(500, 2)))
    assert 0.85 < crowded[0] < 1.15 and crowded[1] < 0.3
    assert 0.85 < same[0] < 1.15 and same[1] > 0.95


def test_a_few_real_outliers_vouch_for_blank_samples_in_precision_not_in_density_or_coverage():
    """A folder of glyphs with two blank images among them (features at the origin, far from the
    glyphs'): their k-NN balls reach into the glyphs' cloud, so they hold the origin. Blank samples
    then score precision 1, while density counts those two balls (2 of k = 5) and coverage two
    real images of 502."""
    rng = np.random.default_rng(4)
    glyphs = rng.normal(loc=10.0, size=(500, 8))
    real = np.concatenate([glyphs, np.zeros((2, 8))])
    blank = np.zeros((200, 8))
    precision, recall = metrics.precision_recall(real, blank)
    density, coverage = metrics.density_coverage(real, blank)
    assert precision == 1.0 and recall < 0.01
    assert density == pytest.approx(2 / 5) and coverage == pytest.approx(2 / 502)


def test_blank_real_images_with_copies_vouch_for_nothing():
    """Blank images have features of exactly 0 (README, "Quality, measured"). With more than k of
    them among the real images, their balls have radius 0 and hold nothing (prdc counts strictly
    inside): blank samples score 0 everywhere. Counted with <=, they scored precision 1 and
    density 10, above samples drawn like the glyphs."""
    rng = np.random.default_rng(5)
    real = np.concatenate([rng.normal(loc=10.0, size=(950, 8)), np.zeros((50, 8))])
    blank, like_glyphs = np.zeros((1000, 8)), rng.normal(loc=10.0, size=(1000, 8))
    assert metrics.precision_recall(real, blank) == (0.0, 0.0)
    assert metrics.density_coverage(real, blank) == (0.0, 0.0)
    assert metrics.precision_recall(real, like_glyphs)[0] > 0.5
    assert metrics.density_coverage(real, like_glyphs)[0] > 0.5


def test_features_a_metric_cannot_use_are_refused():
    rng = np.random.default_rng(6)
    real, fake = rng.normal(size=(50, 4)), rng.normal(size=(50, 4))
    for bad in (np.inf, np.nan):  # one inf row gave recall 1, NaN a scipy error or KID nan
        poisoned = fake.copy()
        poisoned[3, 1] = bad
        with pytest.raises(ValueError, match="generated features hold NaN or infinite values"):
            metrics.scores(real, poisoned, None, kid_subsets=2)
    for metric in (metrics.frechet_distance, metrics.kernel_distance, metrics.precision_recall,
                   metrics.density_coverage):
        with pytest.raises(ValueError, match=r"feature sizes differ: 4 \(real\) and 3"):
            metric(real, fake[:, :3])
    with pytest.raises(ValueError, match="classes >= 2"):
        metrics.recognisability(np.ones((5, 1)))


def test_kid_of_sets_of_different_sizes_subsamples_the_larger():
    """Only two sets of one size are each subset whole (std 0); otherwise the subsets differ."""
    rng = np.random.default_rng(7)
    assert metrics.kernel_distance(rng.normal(size=(200, 4)), rng.normal(size=(150, 4)), num_subsets=5)[1] > 0


def test_recognisability_and_coverage():
    probabilities = np.array([[0.95, 0.05, 0.0], [0.1, 0.9, 0.0], [0.5, 0.5, 0.0], [0.92, 0.0, 0.08]])
    assert metrics.recognisability(probabilities) == (0.75, 2)


def test_scores_without_class_probabilities_leave_out_the_class_metrics():
    rng = np.random.default_rng(3)
    result = metrics.scores(rng.normal(size=(60, 4)), rng.normal(size=(60, 4)), None, kid_subsets=5)
    assert set(result) == {"fd", "kid", "kid_std", "precision", "recall", "density", "real_coverage",
                           "n_real", "n_fake"}


def test_bad_shapes_are_refused(classifier):
    with pytest.raises(ValueError, match="28, 28, 1"):
        compare(classifier, np.zeros((4, 28, 28), np.float32), np.zeros((4, 28, 28, 1), np.float32))


def font_digits(count: int, seed: int, only: int | None = None) -> np.ndarray:
    """Digits in Pillow's own font, shifted and turned a little: glyphs that are no rune."""
    from PIL import Image, ImageDraw, ImageFont

    from runegen.data import to_unit_range

    font, rng = ImageFont.load_default(size=22), np.random.default_rng(seed)
    glyphs = np.empty((count, 28, 28), np.uint8)
    for i in range(count):
        image = Image.new("L", (28, 28))
        digit = only if only is not None else rng.integers(0, 10)
        ImageDraw.Draw(image).text((14 + rng.uniform(-2, 2), 14 + rng.uniform(-2, 2)), str(digit), fill=255,
                                   font=font, anchor="mm")
        glyphs[i] = np.asarray(image.rotate(rng.uniform(-12, 12), resample=Image.Resampling.BILINEAR))
    return to_unit_range(glyphs)


def test_the_shipped_rune_classifier_measures_glyphs_that_are_no_runes():
    """Unlabelled data is scored on the shipped rune classifier's features (scorer.py): on digits
    they still tell real from real, blur by degree, and a collapsed generator."""
    shipped = classifiers.load_classifier(classifiers.prefer_onnx(classifiers.SHIPPED_CLASSIFIER))
    real, other = font_digits(500, seed=1), font_digits(500, seed=2)
    same = score(shipped, real, other)
    blurred = [score(shipped, real, blur(other, sigma))["fd"] for sigma in (0.5, 1.0, 1.5)]
    collapsed = score(shipped, real, font_digits(500, seed=2, only=7))
    assert same["fd"] < 10 and same["precision"] > 0.9 and same["recall"] > 0.9
    assert same["fd"] < blurred[0] < blurred[1] < blurred[2]
    assert collapsed["fd"] > 10 * same["fd"] and collapsed["recall"] < 0.3
