"""How a generator's input is drawn, the same in training, evaluation, export checks and the runtime."""

from __future__ import annotations

import numpy as np

from runegen.core.errors import RunegenError


def latents(n: int, width: int, seed: int, num_classes: int = 0, labels=None) -> np.ndarray:
    """A generator's input, float32 (n, width); the same for the same seed.

    Plain: n standard-normal latent vectors. With a one-hot part (num_classes > 0: the classes of a
    conditional generator, or the latent codes of one trained with codes): the last num_classes
    columns are the one-hot of `labels` (n integers; drawn uniformly from `seed` when None), the
    others standard-normal noise."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, width)).astype(np.float32)
    if num_classes:
        labels = rng.integers(0, num_classes, n) if labels is None else np.asarray(labels)
        if labels.shape != (n,) or labels.min(initial=0) < 0 or labels.max(initial=0) >= num_classes:
            raise RunegenError(f"expected {n} class labels in 0..{num_classes - 1}")
        z[:, width - num_classes:] = np.eye(num_classes, dtype=np.float32)[labels]
    return z
