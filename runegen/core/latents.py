"""How a generator's input is drawn, the same in training, evaluation, export checks and the runtime."""

from __future__ import annotations

import numpy as np

from runegen.core.errors import RunegenError

# Beside a trained generator.keras: the learned code prior (a JSON list, one weight per code).
CODE_WEIGHTS_FILE = "code_weights.json"


def latents(n: int, width: int, seed: int, num_classes: int = 0, labels=None, weights=None) -> np.ndarray:
    """A generator's input, float32 (n, width); the same for the same seed.

    Plain: n standard-normal latent vectors. With a one-hot part (num_classes > 0: the classes of a
    conditional generator, or the latent codes of one trained with codes): the last num_classes
    columns are the one-hot of `labels` (n integers; when None drawn from `seed`, uniformly or in
    proportion to `weights`, a code prior), the others standard-normal noise."""
    for name, value in (("n", n), ("seed", seed)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
            raise RunegenError(f"{name} must be a whole number >= 0, got {value!r}")
    if labels is not None and not num_classes:  # they were dropped without a word
        raise RunegenError("this model takes no labels: it has no classes and no latent codes")
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, width)).astype(np.float32)
    if num_classes:
        if labels is None:
            labels = (rng.integers(0, num_classes, n) if weights is None
                      else rng.choice(num_classes, n, p=np.asarray(weights, np.float64) / np.sum(weights)))
        z[:, width - num_classes:] = np.eye(num_classes, dtype=np.float32)[_indices(labels, n, num_classes)]
    return z


def _indices(labels, n: int, num_classes: int) -> np.ndarray:
    """`labels` as n integer indices in 0..num_classes-1 (class or code indices), or a RunegenError
    that says what was given."""
    array = np.asarray(labels) if not isinstance(labels, (str, bytes)) else np.asarray([labels])
    if array.size == 0 and n == 0:
        return np.zeros(0, np.int64)
    if (array.shape != (n,) or array.dtype.kind not in "iu"
            or array.min(initial=0) < 0 or array.max(initial=0) >= num_classes):
        shown = repr(labels) if len(repr(labels)) <= 60 else repr(labels)[:57] + "..."
        raise RunegenError(f"expected {n} labels, whole numbers in 0..{num_classes - 1} (class or code "
                           f"indices), got {shown}")
    return array


def spread(n: int, num_classes: int, weights=None) -> np.ndarray:
    """n labels covering every class in turn (0, 1, ..., 0, 1, ...), or with `weights` each class
    as often as its weight says (its share of n, rounded by systematic sampling, sorted): the
    labels of an evaluation, where random draws would add their own noise to the score."""
    if weights is None:
        return np.arange(n) % num_classes
    cumulative = np.cumsum(np.asarray(weights, np.float64))
    return np.minimum(np.searchsorted(cumulative / cumulative[-1], (np.arange(n) + 0.5) / n), num_classes - 1)
