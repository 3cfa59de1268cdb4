"""Offline quality metrics for generated glyphs: no Inception network, no download.

A small CNN classifier is trained on the built-in data (`train_classifier`); its penultimate layer,
named "features" (128-d, ReLU), plays the role Inception's pool layer plays in FID. On those
features, `evaluate(classifier, real, fake)` computes:

- `fd`: the Fréchet distance between Gaussians fitted to real and generated features
  (Heusel et al. 2017, the formula of FID with our own feature extractor);
- `kid`, `kid_std`: the kernel distance, unbiased MMD² with the cubic polynomial kernel
  k(x, y) = (x·y / d + 1)³, averaged over random subsets (Bińkowski et al. 2018);
- `precision`, `recall`: improved precision and recall with k-nearest-neighbour manifolds
  (Kynkäänniemi et al. 2019, k = 3);
- `recognisability`: the share of generated samples the classifier labels with confidence
  >= 0.9, and `class_coverage`: how many distinct classes those confident labels cover
  (out of `num_classes`).

Images are float32 (N, 28, 28, 1) in [-1, 1], as everywhere in runegen. Every number is
deterministic: the same classifier and the same images give the same dict.
"""

from __future__ import annotations

import numpy as np

from runegen.data import IMAGE_SIZE, GlyphDataset

FEATURES_LAYER = "features"
FEATURE_DIM = 128
IMAGE_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 1)


# --- The classifier ---------------------------------------------------------------------------

def build_classifier(num_classes: int, feature_dim: int = FEATURE_DIM):
    """Conv(32)-pool-Conv(64)-pool-Dense(feature_dim, "features")-Dropout-Dense(num_classes, softmax)."""
    import keras
    from keras import layers

    inputs = keras.Input(IMAGE_SHAPE, name="image")
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(inputs)
    x = layers.MaxPooling2D()(x)  # 14x14
    x = layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D()(x)  # 7x7
    x = layers.Flatten()(x)
    features = layers.Dense(feature_dim, activation="relu", name=FEATURES_LAYER)(x)
    x = layers.Dropout(0.3)(features)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="glyph_classifier")


def train_classifier(dataset: GlyphDataset, epochs: int = 5, seed: int = 0, batch_size: int = 64,
                     learning_rate: float = 2e-3, outlier_share: float = 0.25, verbose: int = 0):
    """Train the feature classifier on `dataset`; returns the compiled keras.Model.

    Besides the glyphs, it sees `outlier_share` x len(dataset) non-glyphs (noise, blobs, blank
    frames) whose target is the uniform distribution over the classes (outlier exposure, Hendrycks
    et al. 2019). Without them a plain CNN calls almost any noise image one class with confidence
    near 1, and its features of noise fall inside the real manifold: an untrained generator would
    score as recognisable and precise.

    Same seed, same data, same machine -> same weights (keras.utils.set_random_seed fixes the
    initialisation, the dropout masks and the shuffle order; the outliers come from `seed` too).
    """
    import keras

    _check_images(dataset.images, "dataset.images")
    num_classes = len(dataset.class_names)
    keras.utils.set_random_seed(seed)
    outliers = outlier_images(int(round(outlier_share * len(dataset))), np.random.default_rng([seed, 1]))
    images = np.concatenate([dataset.images, outliers])
    targets = np.concatenate([np.eye(num_classes, dtype=np.float32)[dataset.labels],
                              np.full((len(outliers), num_classes), 1 / num_classes, np.float32)])
    model = build_classifier(num_classes)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="categorical_crossentropy",
                  metrics=["categorical_accuracy"])
    model.fit(images, targets, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=verbose)
    return model


def outlier_images(n: int, rng: np.random.Generator) -> np.ndarray:
    """n float32 (n, 28, 28, 1) images in [-1, 1] that are no glyph, in four kinds, mixed:
    uniform noise, sparse Gaussian speckle on black, smooth thresholded blobs, and flat frames."""
    from scipy import ndimage

    shape = (IMAGE_SIZE, IMAGE_SIZE)
    images = np.empty((n, *shape), np.float32)
    for i, kind in enumerate(rng.integers(0, 4, n)):
        if kind == 0:
            image = rng.uniform(-1, 1, shape)
        elif kind == 1:
            image = rng.normal(-1, rng.uniform(0.2, 1.0), shape)
        elif kind == 2:
            field = ndimage.gaussian_filter(rng.normal(size=shape), rng.uniform(1.0, 3.0))
            image = np.where(field > np.quantile(field, rng.uniform(0.6, 0.9)), 1.0, -1.0)
            image = ndimage.gaussian_filter(image, 0.7)
        else:
            image = np.full(shape, rng.uniform(-1, 1))
        images[i] = np.clip(image, -1, 1)
    return images[..., None]


class KerasClassifier:
    """A `build_classifier` keras.Model with both outputs the metrics need, in one model built once."""

    def __init__(self, model):
        import keras

        self.model = model
        self.num_classes = int(model.output_shape[-1])
        self.both = keras.Model(model.input, [model.get_layer(FEATURES_LAYER).output, model.outputs[0]])

    def features_and_probabilities(self, images: np.ndarray):
        features, probabilities = self.both(images, training=False)
        return np.asarray(features), np.asarray(probabilities)


def classifier_outputs(classifier, images: np.ndarray, batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """(features float64 (N, d), class probabilities float64 (N, classes)) in inference mode.

    `classifier` is the keras.Model of `build_classifier`, or any object with a
    `features_and_probabilities(images)` method (KerasClassifier, runegen.evaluate's ONNX one)."""
    _check_images(images, "images")
    if not hasattr(classifier, "features_and_probabilities"):
        classifier = KerasClassifier(classifier)
    features, probabilities = [], []
    for start in range(0, len(images), batch_size):
        f, p = classifier.features_and_probabilities(
            np.ascontiguousarray(images[start:start + batch_size], np.float32))
        features.append(np.asarray(f, np.float64))
        probabilities.append(np.asarray(p, np.float64))
    return np.concatenate(features), np.concatenate(probabilities)


def accuracy(classifier, dataset: GlyphDataset) -> float:
    """Share of `dataset` whose argmax class is its label."""
    _, probabilities = classifier_outputs(classifier, dataset.images)
    return float(np.mean(probabilities.argmax(1) == dataset.labels))


# --- The metrics, on feature vectors ------------------------------------------------------------

def frechet_distance(real_features: np.ndarray, fake_features: np.ndarray, eps: float = 1e-6) -> float:
    """||mu_r - mu_f||² + Tr(S_r + S_f - 2 (S_r S_f)^½) between Gaussians fitted to the two sets."""
    real, fake = _features(real_features, 2), _features(fake_features, 2)
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
    When both sets hold at most subset_size samples, every subset is the whole set and the std is 0.
    """
    real, fake = _features(real_features, 2), _features(fake_features, 2)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature sizes differ: {real.shape[1]} and {fake.shape[1]}")
    d = real.shape[1]
    m = min(subset_size, len(real), len(fake))
    rng = np.random.default_rng(seed)
    estimates = np.empty(num_subsets)
    for i in range(num_subsets):
        x = real[rng.choice(len(real), m, replace=False)]
        y = fake[rng.choice(len(fake), m, replace=False)]
        k_xx = (x @ x.T / d + 1.0) ** 3
        k_yy = (y @ y.T / d + 1.0) ** 3
        k_xy = (x @ y.T / d + 1.0) ** 3
        within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
        estimates[i] = within - 2.0 * k_xy.mean()
    return float(estimates.mean()), float(estimates.std())


def precision_recall(real_features: np.ndarray, fake_features: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019).

    Each set's manifold is the union of balls around its samples, each ball reaching the sample's
    k-th nearest neighbour in the same set. Precision: the share of generated samples inside the
    real manifold; recall: the share of real samples inside the generated one.
    """
    real, fake = _features(real_features, k + 1), _features(fake_features, k + 1)
    real_radii, fake_radii = _knn_radii(real, k), _knn_radii(fake, k)
    return _inside(fake, real, real_radii), _inside(real, fake, fake_radii)


def _knn_radii(features: np.ndarray, k: int, chunk: int = 1024) -> np.ndarray:
    """Distance from each sample to its k-th nearest other sample."""
    from scipy.spatial.distance import cdist

    radii = np.empty(len(features))
    for start in range(0, len(features), chunk):
        distances = cdist(features[start:start + chunk], features)
        radii[start:start + chunk] = np.partition(distances, k, axis=1)[:, k]  # column 0 is the sample itself
    return radii


def _inside(queries: np.ndarray, centres: np.ndarray, radii: np.ndarray, chunk: int = 1024) -> float:
    """Share of `queries` inside at least one ball (centre, radius)."""
    from scipy.spatial.distance import cdist

    hits = 0
    for start in range(0, len(queries), chunk):
        hits += int(np.any(cdist(queries[start:start + chunk], centres) <= radii, axis=1).sum())
    return hits / len(queries)


def recognisability(probabilities: np.ndarray, threshold: float = 0.9) -> tuple[float, int]:
    """(share of samples whose top class has probability >= threshold, distinct classes among them)."""
    probabilities = np.asarray(probabilities)
    confident = probabilities.max(1) >= threshold
    coverage = len(np.unique(probabilities.argmax(1)[confident]))
    return float(confident.mean()), int(coverage)


def class_accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Share of samples whose top class is the one they were generated as (conditional models)."""
    return float(np.mean(np.asarray(probabilities).argmax(1) == np.asarray(labels)))


# --- All of them ------------------------------------------------------------------------------

def evaluate(classifier, real_images: np.ndarray, fake_images: np.ndarray, *, labels=None,
             **options) -> dict:
    """Every metric of generated vs real images, from the classifier's "features" layer.

    Returns {"fd", "kid", "kid_std", "precision", "recall", "recognisability", "class_coverage",
    "num_classes", "n_real", "n_fake"}, and "class_accuracy" when the fakes' `labels` (the classes
    they were asked for) are given; lower fd/kid and higher everything else is better.
    `options`: those of `scores`.
    """
    real_features, _ = classifier_outputs(classifier, real_images)
    fake_features, fake_probabilities = classifier_outputs(classifier, fake_images)
    return scores(real_features, fake_features, fake_probabilities, labels, **options)


def scores(real_features: np.ndarray, fake_features: np.ndarray, fake_probabilities: np.ndarray,
           labels=None, *, k: int = 3, threshold: float = 0.9, kid_subsets: int = 100,
           kid_subset_size: int = 1000, seed: int = 0) -> dict:
    """`evaluate` from classifier outputs already computed (the real ones can then be reused)."""
    kid, kid_std = kernel_distance(real_features, fake_features, kid_subsets, kid_subset_size, seed)
    precision, recall = precision_recall(real_features, fake_features, k)
    recognisable, coverage = recognisability(fake_probabilities, threshold)
    result = {
        "fd": frechet_distance(real_features, fake_features),
        "kid": kid,
        "kid_std": kid_std,
        "precision": precision,
        "recall": recall,
        "recognisability": recognisable,
        "class_coverage": coverage,
        "num_classes": int(fake_probabilities.shape[1]),
        "n_real": len(real_features),
        "n_fake": len(fake_features),
    }
    if labels is not None:
        result["class_accuracy"] = class_accuracy(fake_probabilities, labels)
    return result


def _check_images(images: np.ndarray, what: str) -> None:
    shape = tuple(np.shape(images))
    if len(shape) != 4 or shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"{what}: expected shape (N, 28, 28, 1), got {shape}")


def _features(features: np.ndarray, minimum: int) -> np.ndarray:
    features = np.asarray(features, np.float64)
    if features.ndim != 2:
        raise ValueError(f"expected features of shape (N, d), got {features.shape}")
    if len(features) < minimum:
        raise ValueError(f"need at least {minimum} samples, got {len(features)}")
    return features
