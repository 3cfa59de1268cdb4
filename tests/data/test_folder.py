"""Image folders (runegen/data/folder.py): Pillow's decompression-bomb limit holds for every frame
or page of a file, not only the first one it checks on opening."""

from PIL import Image

from conftest import bar_glyph
from runegen.data import load_dataset


def test_a_later_page_over_the_pixel_limit_skips_its_file_as_a_first_one_does(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # limit 2,000 pixels: 28x28 (784) passes, 60x60 not
    Image.fromarray(bar_glyph("down")).save(tmp_path / "still.png")
    first, large = Image.fromarray(bar_glyph("across")), Image.fromarray(bar_glyph("cross")).resize((60, 60))
    first.save(tmp_path / "pages.tif", save_all=True, append_images=[large])
    large.save(tmp_path / "large.png")  # the first frame over the limit: skipped and named
    data = load_dataset(str(tmp_path))
    assert len(data) == 1  # still.png alone: no page of pages.tif read
    said = capsys.readouterr().err.replace("\n", " ")
    assert "skipped 2 unreadable image file(s)" in said and "over Pillow's 2,000-pixel limit" in said
    assert said.rstrip().endswith(": large.png, pages.tif")
