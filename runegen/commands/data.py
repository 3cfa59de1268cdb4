"""`runegen data preview`: a look at the training data, on the edge install too (no TensorFlow)."""

from __future__ import annotations

from pathlib import Path

import typer

from runegen.commands.options import check_output_file, check_outside_the_data, flag, given_path, positive, require
from runegen.core.errors import DataError, UsageError, reason

# Samples a preview row shows at most: 100 glyphs, drawn 3x, make a row 9,000 pixels wide, as wide as
# an image viewer still shows whole (100000 took 11 s and 2 GB for a PNG 9,000,000 pixels wide on a 2-core AMD EPYC Zen 4).
MAX_PER_CLASS = 100


def data_preview(
    data: str = typer.Option("runes", parser=given_path("--data", str), help="Same as train --data."),
    out: Path = typer.Option(Path("data_preview.png"), parser=given_path("--out"), help="PNG to write."),
    per_class: int = typer.Option(12, min=1, max=MAX_PER_CLASS, help=f"Samples shown per class (one row each, as long as the largest class shown; at most {MAX_PER_CLASS}, a row 9,000 pixels wide)."),
    max_classes: int = typer.Option(24, callback=positive("--max-classes"), help="Classes shown at most: the first N, in label order."),
    seed: int = typer.Option(0, min=0, help="Seed for drawing the built-in runes (files are shown as they are)."),
):
    """Write a PNG grid of the training data, one row per class."""
    import numpy as np

    from runegen.core import images
    from runegen.data import load_dataset

    check_output_file(out, "--out", ".png")
    check_outside_the_data(out, "--out", data)
    if data == "runes":  # their elastic bend is scipy's, which the edge install leaves out
        require("scipy", "drawing the built-in runes needs scipy: pip install scipy (or 'runegen[train]')")
    with flag("--data", DataError):
        dataset = load_dataset(data, samples_per_class=per_class, seed=seed)
    rows = [np.flatnonzero(dataset.labels == c)[:per_class] for c in range(len(dataset.class_names))][:max_classes]
    columns = max(1, *map(len, rows))  # not per_class: a small folder's rows were padded out to it
    glyphs = np.full((len(rows), columns, 28, 28), images.BACKGROUND, np.uint8)  # a short class's row ends early
    for glyph_row, picked in zip(glyphs, rows):
        glyph_row[:len(picked)] = images.to_uint8(dataset.images[picked])
    try:
        images.save_png(images.grid(glyphs.reshape(-1, 28, 28), columns=columns), out)
    except OSError as error:
        raise UsageError(f"--out {out}: cannot write ({reason(error)})") from None
    shown = len(rows)
    typer.echo(f"wrote {out}: {sum(map(len, rows))} samples of {shown} class{'es' if shown > 1 else ''} "
               f"({', '.join(dataset.class_names[:shown])}), one row each")
