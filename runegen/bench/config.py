"""`BenchConfig`: every setting of a bench run, from the `bench` command to the plan (plan.py).
TensorFlow- and numpy-free, so the CLI reads its defaults without loading anything."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

# The largest --batches: 64x the largest batch a target reads (1024, on CUDA), where s1's largest
# activation (12,544 floats per image) already takes 3.3 GB by its shapes (not measured); 10^10 asked numpy for 7.28 TiB once
# every row had run, and a few million could get the process killed for memory.
MAX_BATCH = 65_536


@dataclass
class BenchConfig:
    """Every setting of a bench run. The `bench` command has one option per field, of the same
    name but `devices` (`--device`), and defaults of its own (`--threads 1,all`)."""
    devices: list[str] = field(default_factory=lambda: ["cpu"])
    threads: list[int] = field(default_factory=lambda: [1])
    batches: list[int] = field(default_factory=lambda: [1, 8, 64, 256])  # throughput batch sizes
    min_seconds: float = 1.0  # minimum timed seconds per measurement
    runs: int = 10  # minimum timed calls per measurement
    profile: Path | None = None  # a folder for each ONNX row's onnxruntime profile (per-op times, JSON)
    quality_samples: int = 500  # images per row scored by the rune classifier (0: none; see worker.quality)

    @property
    def settings(self) -> dict:
        """What the report records of this run's settings."""
        return {name: value for name, value in asdict(self).items() if name != "profile"}  # where, not how
