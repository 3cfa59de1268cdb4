"""The offline quality metrics, on feature vectors and class probabilities: numpy and scipy only.

The features come from the rune classifier's 128-d "features" layer (quality/classifier.py), which
plays the role Inception's pool layer plays in FID; `scores` computes every metric at once:

- `fd`: the Fréchet distance between Gaussians fitted to real and generated features
  (Heusel et al. 2017, the formula of FID with our own feature extractor);
- `kid`, `kid_std`: the kernel distance, unbiased MMD² with the cubic polynomial kernel
  k(x, y) = (x·y / d + 1)³, averaged over random subsets (Bińkowski et al. 2018);
- `precision`, `recall`: improved precision and recall with k-nearest-neighbour manifolds
  (Kynkäänniemi et al. 2019, k = 3);
- `density`, `real_coverage`: density and coverage (Naeem et al. 2020, k = 5), on the real
  samples' neighbourhoods only, so that a few real outliers cannot vouch for any sample;
- `recognisability`: the share of generated samples the classifier labels with confidence
  >= 0.9, and `class_coverage`: how many distinct classes those confident labels cover
  (out of `num_classes`).

Every number is deterministic: the same features give the same dict.
"""

from __future__ import annotations

import numpy as np

# What each of `scores`' figures says, in the order reports print them (`runegen evaluate`).
READINGS = {
    "fd": "Fréchet distance on classifier features (lower is better)",
    "kid": "kernel distance (lower is better; real vs real runes: about -1.8 to 0)",
    "precision": "share of samples inside the real manifold",
    "recall": "share of real glyphs inside the samples' manifold",
    "density": "real neighbourhoods holding a sample, per k (about 1 for real vs real)",
    "real_coverage": "share of real glyphs with a sample in their neighbourhood",
    "recognisability": "share of samples labelled with confidence >= 0.9",
    "class_coverage": "distinct classes among the confident samples",
    "class_accuracy": "conditional: share drawn as the class asked for",
}


def frechet_distance(real_features: np.ndarray, fake_features: np.ndarray, eps: float = 1e-6) -> float:
    """||mu_r - mu_f||² + Tr(S_r + S_f - 2 (S_r S_f)^½) between Gaussians fitted to the two sets."""
    real, fake = _paired(real_features, fake_features, 2)
    mu_r, mu_f = real.mean(0), fake.mean(0)
    cov_r, cov_f = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    covmean = _sqrtm(cov_r @ cov_f)
    if covmean is None:  # singular product (dead ReLU units): nudge both diagonals, as pytorch-fid does
        offset = np.eye(len(cov_r)) * eps
        covmean = _sqrtm((cov_r + offset) @ (cov_f + offset))
        if covmean is None:
            raise ValueError("Fréchet distance: the covariance product has no usable square root")
    diff = mu_r - mu_f
    distance = diff @ diff + np.trace(cov_r) + np.trace(cov_f) - 2.0 * np.trace(covmean)
    return float(max(distance, 0.0))  # a true distance is >= 0; round-off can dip a hair below


def _sqrtm(product: np.ndarray, tolerance: float = 1e-3) -> np.ndarray | None:
    """The real part of scipy's sqrtm(product), or None when it is not finite, not accurate (its
    square misses `product` by more than `tolerance`, relatively) or clearly complex.

    The square root of a product of two covariance matrices is real in exact arithmetic; round-off
    leaves tiny imaginary parts, which are dropped. scipy's "matrix is singular" warning is replaced
    by that accuracy check."""
    import warnings

    from scipy import linalg

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        root = linalg.sqrtm(product)
    if not np.all(np.isfinite(root)):
        return None
    scale = max(np.abs(product).max(), 1e-12)
    if np.iscomplexobj(root):
        if np.abs(root.imag).max() > tolerance * np.sqrt(scale):
            return None
        root = root.real
    if np.abs(root @ root - product).max() > tolerance * scale:
        return None
    return root


def kernel_distance(real_features: np.ndarray, fake_features: np.ndarray, num_subsets: int = 100,
                    subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """KID: unbiased MMD² with k(x, y) = (x·y / d + 1)³, mean and std over random subsets.

    Each subset draws min(subset_size, n_real, n_fake) samples without replacement from each set
    (Bińkowski et al. 2018); the draws come from a generator seeded `seed`, so the result is fixed.
    When both sets hold the same number of samples, at most subset_size, every subset is both
    whole sets and the std is 0; sets of different sizes are subsampled to the smaller one's size.
    """
    real, fake = _paired(real_features, fake_features, 2)
    d = real.shape[1]
    m = min(subset_size, len(real), len(fake))

    def mmd(x, y):
        k_xx = (x @ x.T / d + 1.0) ** 3
        k_yy = (y @ y.T / d + 1.0) ** 3
        k_xy = (x @ y.T / d + 1.0) ** 3
        within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
        return within - 2.0 * k_xy.mean()

    if m == len(real) == len(fake):  # every subset is both whole sets, reordered: one estimate
        return float(mmd(real, fake)), 0.0
    rng = np.random.default_rng(seed)
    estimates = np.empty(num_subsets)
    for i in range(num_subsets):
        estimates[i] = mmd(real[rng.choice(len(real), m, replace=False)],
                           fake[rng.choice(len(fake), m, replace=False)])
    return float(estimates.mean()), float(estimates.std())


def precision_recall(real_features: np.ndarray, fake_features: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019).

    Each set's manifold is the union of balls around its samples, each ball reaching the sample's
    k-th nearest neighbour in the same set. Precision: the share of generated samples inside the
    real manifold; recall: the share of real samples inside the generated one.
    """
    real, fake = _paired(real_features, fake_features, k + 1, k + 1)
    real_radii, fake_radii = _knn_radii(real, k), _knn_radii(fake, k)
    in_real, _ = _balls(fake, real, real_radii)
    in_fake, _ = _balls(real, fake, fake_radii)
    return float(np.mean(in_real > 0)), float(np.mean(in_fake > 0))


def density_coverage(real_features: np.ndarray, fake_features: np.ndarray, k: int = 5) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020), from the real samples' k-NN balls alone.

    Density: the number of real balls each generated sample falls in, over k, averaged: about 1
    when both sets come from one distribution, above 1 where samples cluster around real ones
    more tightly than the real ones lie to each other.
    Coverage: the share of real samples whose ball holds at least one generated sample. Precision
    counts a sample as real-like when any one ball holds it, so a real outlier, whose ball is wide,
    vouches for whatever falls in it (blank images among a folder's glyphs vouch for blank
    samples); density counts that one ball as 1/k and coverage as one real sample. The formulas
    of the authors' `prdc` package, in numpy, as that package needs scikit-learn.
    """
    real, fake = _paired(real_features, fake_features, k + 1, 1)
    holding, covered = _balls(fake, real, _knn_radii(real, k))
    return float(holding.sum() / (k * len(fake))), float(covered.mean())


def _knn_radii(features: np.ndarray, k: int, chunk: int = 1024) -> np.ndarray:
    """Distance from each sample to its k-th nearest other sample."""
    from scipy.spatial.distance import cdist

    radii = np.empty(len(features))
    for start in range(0, len(features), chunk):
        distances = cdist(features[start:start + chunk], features)
        radii[start:start + chunk] = np.partition(distances, k, axis=1)[:, k]  # column 0 is the sample itself
    return radii


def _balls(queries: np.ndarray, centres: np.ndarray, radii: np.ndarray,
           chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """(how many balls (centre, radius) hold each query, whether each ball holds any query).

    A ball holds what lies strictly inside it, as in the authors' `prdc` package: a ball of radius
    0 (a sample with k exact copies, such as blank images, whose features are all 0) holds nothing.
    With `<=`, blank samples against a real set with a few blank images scored precision 1 and
    density 10, above samples that look like the real glyphs."""
    from scipy.spatial.distance import cdist

    holding, hit = np.zeros(len(queries), np.int64), np.zeros(len(centres), bool)
    for start in range(0, len(queries), chunk):
        inside = cdist(queries[start:start + chunk], centres) < radii
        holding[start:start + chunk] = inside.sum(axis=1)
        hit |= inside.any(axis=0)
    return holding, hit


def recognisability(probabilities: np.ndarray, threshold: float = 0.9) -> tuple[float, int]:
    """(share of samples whose top class has probability >= threshold, distinct classes among them)."""
    probabilities = np.asarray(probabilities)
    if probabilities.ndim != 2 or probabilities.shape[0] < 1 or probabilities.shape[1] < 2:
        raise ValueError(f"expected class probabilities of shape (N, classes >= 2), got {probabilities.shape}")
    confident = probabilities.max(1) >= threshold
    coverage = len(np.unique(probabilities.argmax(1)[confident]))
    return float(confident.mean()), int(coverage)


def class_accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Share of samples whose top class is the one they were generated as (conditional models)."""
    return float(np.mean(np.asarray(probabilities).argmax(1) == np.asarray(labels)))


def scores(real_features: np.ndarray, fake_features: np.ndarray, fake_probabilities: np.ndarray | None,
           labels=None, *, k: int = 3, coverage_k: int = 5, threshold: float = 0.9, kid_subsets: int = 100,
           kid_subset_size: int = 1000, seed: int = 0) -> dict:
    """Every metric of generated vs real features: {"fd", "kid", "kid_std", "precision", "recall",
    "density", "real_coverage", "n_real", "n_fake"}, with "recognisability", "class_coverage" and
    "num_classes" from the fakes' class probabilities (None: the classifier's classes are not the
    data's), and "class_accuracy" when the fakes' `labels` (the classes they were asked for) are
    given too; lower fd/kid and higher everything else is better, but density, whose real-data
    value is about 1."""
    kid, kid_std = kernel_distance(real_features, fake_features, kid_subsets, kid_subset_size, seed)
    precision, recall = precision_recall(real_features, fake_features, k)
    density, real_coverage = density_coverage(real_features, fake_features, coverage_k)
    result = {
        "fd": frechet_distance(real_features, fake_features),
        "kid": kid,
        "kid_std": kid_std,
        "precision": precision,
        "recall": recall,
        "density": density,
        "real_coverage": real_coverage,
    }
    if fake_probabilities is not None:
        recognisable, coverage = recognisability(fake_probabilities, threshold)
        result.update(recognisability=recognisable, class_coverage=coverage,
                      num_classes=int(fake_probabilities.shape[1]))
        if labels is not None:
            result["class_accuracy"] = class_accuracy(fake_probabilities, labels)
    result.update(n_real=len(real_features), n_fake=len(fake_features))
    return result


def _paired(real_features: np.ndarray, fake_features: np.ndarray, minimum_real: int,
            minimum_fake: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Both sets as float64 (N, d) arrays of one width, each with enough samples."""
    real = _features(real_features, minimum_real, "real")
    fake = _features(fake_features, minimum_real if minimum_fake is None else minimum_fake, "generated")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature sizes differ: {real.shape[1]} (real) and {fake.shape[1]} (generated)")
    return real, fake


def _features(features: np.ndarray, minimum: int, which: str) -> np.ndarray:
    features = np.asarray(features, np.float64)
    if features.ndim != 2:
        raise ValueError(f"expected {which} features of shape (N, d), got {features.shape}")
    if len(features) < minimum:
        raise ValueError(f"need at least {minimum} {which} samples, got {len(features)}")
    if not np.isfinite(features).all():  # one inf row gave recall 1 (an infinite radius), NaN a scipy error
        raise ValueError(f"{which} features hold NaN or infinite values")
    return features
