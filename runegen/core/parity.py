"""How close an exported model's images are to the Keras generator's (numpy only)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np


@dataclass
class Parity:
    max_abs: float
    mean_abs: float
    psnr: float  # dB, on the [-1, 1] range (peak-to-peak 2)

    @classmethod
    def between(cls, reference: np.ndarray, candidate: np.ndarray) -> "Parity":
        error = np.abs(candidate.astype(np.float64) - reference.astype(np.float64))
        mse = float(np.mean(error**2))
        return cls(float(error.max()), float(error.mean()),
                   math.inf if mse == 0 else 10 * math.log10(4.0 / mse))

    def as_dict(self) -> dict:
        return asdict(self)
