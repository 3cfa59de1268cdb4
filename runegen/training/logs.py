"""What a run writes for people to read, beside its checkpoints: metrics.csv and progress.gif.

Both are rewritten whole and atomically, so a run killed at any moment leaves the last complete
version, and a resumed run rewrites the epochs it redoes rather than appending them twice.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from PIL import Image

from runegen.core import atomic, images


def append_metrics(path: Path, row: dict) -> None:
    """Add one epoch's `row` to the CSV at `path`, dropping the rows of any epoch from
    `row["epoch"]` on (a resumed run redoes them). Evaluated epochs add columns; rows without
    them leave those cells empty."""
    rows = []
    if path.exists():
        with open(path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if int(r["epoch"]) < row["epoch"]]
    rows.append(row)
    fields = list(dict.fromkeys(k for r in rows for k in r))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=fields, restval="")
    writer.writeheader()
    writer.writerows(rows)
    atomic.write_text(path, text.getvalue())


GIF_MAX_SIDE = 65_535  # GIF keeps width and height in 16 bits: past it PIL raised OverflowError


def save_progress_gif(samples: Path, target: Path) -> None:
    """The sample grids of `samples` (epoch_NNN.png), in epoch order, as one GIF; nothing where
    there are none."""
    frames = []
    for path in sorted(samples.glob("epoch_*.png")):
        with Image.open(path) as image:
            frames.append(image.copy())
    largest = max((max(frame.size) for frame in frames), default=0)
    if largest > GIF_MAX_SIDE:  # 730 codes or classes draw a grid 65,706 px wide: shrunk to fit
        frames = [frame.resize((max(1, frame.width * GIF_MAX_SIDE // largest),
                                max(1, frame.height * GIF_MAX_SIDE // largest))) for frame in frames]
    if frames:
        images.save_gif(frames, target)
