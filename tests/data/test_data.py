import shutil
import warnings

import numpy as np
import pytest
from PIL import Image, features

from conftest import bar_glyph
from runegen.data import load_dataset
from runegen.core.errors import DataError


def test_runes_dataset_is_scaled_and_labelled():
    data = load_dataset("runes", samples_per_class=3, seed=1)
    assert data.images.shape == (72, 28, 28, 1) and data.images.dtype == np.float32
    assert data.images.min() >= -1.0 and data.images.max() <= 1.0
    assert data.images.min() == -1.0 and data.images.max() > 0.9  # black background, white strokes
    assert sorted(set(data.labels.tolist())) == list(range(24))
    assert data.class_names[0] == "fehu"


def test_the_runes_size_is_the_callers_to_give():
    """One default for it, TrainConfig's: a second one here had to be kept equal by hand. Numbers
    that draw nothing were numpy's errors ("negative dimensions are not allowed")."""
    with pytest.raises(ValueError, match="samples_per_class"):
        load_dataset("runes")
    for count, seed, fragment in ((-1, 0, "samples_per_class must be a whole number >= 1, got -1"),
                                  (1.5, 0, "samples_per_class must be"), (2, -1, "seed must be a whole number >= 0")):
        with pytest.raises(ValueError, match=fragment):
            load_dataset("runes", count, seed)


def make_folder(root, classes=("a", "b"), per_class=3, size=(40, 32)):
    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(root / name / f"{i}.png")


def test_image_folder_with_class_subfolders(tmp_path):
    make_folder(tmp_path, per_class=3)
    data = load_dataset(str(tmp_path))
    assert data.images.shape == (6, 28, 28, 1) and data.class_names == ("a", "b")
    assert data.labels.tolist() == [0, 0, 0, 1, 1, 1]


def test_flat_image_folder_and_corrupt_files_are_skipped(tmp_path, capsys, monkeypatch):
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(tmp_path / f"{i}.jpg")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    # an image over Pillow's decompression-bomb limit (2 x MAX_IMAGE_PIXELS) raises its own error
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 400)  # the 28x28 glyphs (784) stay under 800
    Image.new("L", (30, 30)).save(tmp_path / "too_large.png")
    data = load_dataset(str(tmp_path))
    assert len(data) == 2 and data.class_names == (tmp_path.name,)
    assert "skipped 2 unreadable image file(s)" in capsys.readouterr().err.replace("\n", " ")
    (tmp_path / "inner").mkdir()
    monkeypatch.chdir(tmp_path / "inner")  # `--data ..` and `--data .` named the class "" (classes.json: [""])
    assert load_dataset("..").class_names == (tmp_path.name,)
    monkeypatch.chdir(tmp_path)
    assert load_dataset(".").class_names == (tmp_path.name,)


def test_a_zip_made_on_a_mac_loads_and_skipped_files_are_named(tmp_path, capsys):
    """Unzipped on another system, a Mac's archive holds __MACOSX/ with a '._name.png' for each
    image: that folder was taken as the only class (the flat images beside it ignored) and the
    whole folder refused, as none of its 'images' could be read."""
    for i in range(3):
        glyph_image().save(tmp_path / f"{i}.png")
        (tmp_path / "__MACOSX").mkdir(exist_ok=True)
        (tmp_path / "__MACOSX" / f"._{i}.png").write_bytes(b"\0\5\26\7 AppleDouble")
    (tmp_path / "._0.png").write_bytes(b"\0\5\26\7 AppleDouble")  # hidden files are not read either
    for name in ("bad1.png", "bad2.png", "bad3.png", "bad4.png"):
        (tmp_path / name).write_bytes(b"junk")
    data = load_dataset(str(tmp_path))
    assert len(data) == 3 and data.class_names == (tmp_path.name,)
    assert "skipped 4 unreadable image file(s)" in capsys.readouterr().err.replace("\n", " ")
    (tmp_path / "broken").mkdir()  # a subfolder: the layout by class, whose only class is unreadable
    (tmp_path / "broken" / "x.png").write_bytes(b"junk")
    with pytest.raises(DataError, match=r"could be read \(broken, not readable, or over .*: broken/x.png\); "
                                        r"the 7 image file\(s\) at its top were ignored"):
        load_dataset(str(tmp_path))


def test_class_folders_without_images_of_their_own_are_named(tmp_path, capsys):
    """Only the images directly in a class folder are read: a folder whose images lie one level
    deeper was left out without a word, and a tree of such folders was 'no images found'."""
    (tmp_path / "a" / "deeper").mkdir(parents=True)
    glyph_image().save(tmp_path / "a" / "deeper" / "0.png")
    (tmp_path / "b").mkdir()
    glyph_image().save(tmp_path / "b" / "0.png")
    assert load_dataset(str(tmp_path)).class_names == ("b",)
    assert "left out folder(s) a of" in capsys.readouterr().err
    shutil.rmtree(tmp_path / "b")
    with pytest.raises(DataError, match=r"no images found .*\(folders inside its subfolders are not read\)"):
        load_dataset(str(tmp_path))


def test_a_class_with_no_readable_image_is_left_out(tmp_path, capsys):
    make_folder(tmp_path, classes=("a", "b", "c"), per_class=2)
    for broken in (tmp_path / "b").iterdir():
        broken.write_bytes(b"not a png")
    data = load_dataset(str(tmp_path))
    assert data.class_names == ("a", "c") and data.labels.tolist() == [0, 0, 1, 1]
    assert "left out class(es) b" in capsys.readouterr().err


def test_loose_images_beside_class_subfolders_are_ignored_and_named(tmp_path, capsys):
    make_folder(tmp_path, per_class=2)
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "loose.png")
    data = load_dataset(str(tmp_path))
    assert len(data) == 4 and data.class_names == ("a", "b")
    assert "ignored 1 image file(s) at the top of" in capsys.readouterr().err


def glyph_image(mode="L", ink=255, ground=0, size=(28, 28)):
    """An L-shaped stroke (its corner tells up from down and left from right) on a plain ground."""
    from PIL import ImageDraw

    image = Image.new(mode, size, ground)
    ImageDraw.Draw(image).line([(8, 4), (8, 22), (20, 22)], fill=ink, width=3)
    return image


def test_transparent_glyphs_are_laid_on_a_ground_that_sets_off_their_ink(tmp_path):
    """Pillow's convert("L") drops alpha: a black glyph on a transparent ground turned all black."""
    glyph_image("RGBA", (0, 0, 0, 255), (0, 0, 0, 0)).save(tmp_path / "dark.png")
    glyph_image("RGBA", (255, 255, 255, 255), (255, 255, 255, 0)).save(tmp_path / "light.png")
    dark, light = load_dataset(str(tmp_path)).images[:, :, :, 0]  # sorted: dark.png, light.png
    assert dark[0, 0] == 1.0 and dark.min() == -1.0  # black ink on white
    assert light[0, 0] == -1.0 and light.max() == 1.0  # white ink on black
    np.testing.assert_array_equal(dark, -light)


def test_sixteen_bit_grays_are_scaled_not_clipped(tmp_path):
    grays = glyph_image(ink=100, ground=30)
    Image.fromarray(np.asarray(grays, np.uint16) * 257).save(tmp_path / "deep.png")  # the same, of 65535
    grays.save(tmp_path / "plain.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    deep_glyph, plain_glyph = load_dataset(str(tmp_path)).images
    np.testing.assert_array_equal(deep_glyph, plain_glyph)


@pytest.mark.parametrize("bits", [10, 12])
def test_grays_of_fewer_bits_in_a_sixteen_bit_file_keep_their_look(tmp_path, bits):
    """12-bit data (0..4095) in a 16-bit file was scaled by 65535 (a glyph at 6% gray), and
    anything over 255 by the same, so 0..256 became one gray step: a blank image."""
    grays = glyph_image(ink=255, ground=0)
    Image.fromarray((np.asarray(grays, np.uint32) * (2 ** bits - 1) // 255).astype(np.uint16)).save(tmp_path / "deep.png")
    grays.save(tmp_path / "plain.png")
    deep_glyph, plain_glyph = load_dataset(str(tmp_path)).images
    np.testing.assert_allclose(deep_glyph, plain_glyph, atol=2 / 127.5)


def test_a_float_image_with_no_data_pixels_is_read_as_its_glyph(tmp_path):
    """A 32-bit float TIFF whose "no data" pixels are NaN: a RuntimeWarning per image from the cast,
    then every image refused as "one flat colour" (its maximum was NaN)."""
    grays = np.asarray(glyph_image(ink=255, ground=0), np.float32) / 255.0
    grays[0, 0] = np.nan
    Image.fromarray(grays).save(tmp_path / "nodata.tif")  # mode F: 32-bit float
    glyph_image(ink=255, ground=0).save(tmp_path / "plain.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        float_glyph, plain_glyph = load_dataset(str(tmp_path)).images
    np.testing.assert_allclose(float_glyph, plain_glyph, atol=2 / 127.5)


@pytest.mark.parametrize("pages", [False, True])
def test_the_sixteen_bit_images_of_a_folder_share_one_white(tmp_path, pages):
    """A white from each image's own brightest pixel made a glyph of ink 4095 white (12 bits) and
    one of 4096 dark gray (14 bits): one folder, one scale, the 14 bits that hold both. The same for
    the pages of one TIFF file."""
    deep = [Image.fromarray((np.asarray(glyph_image(ink=255), np.uint32) * ink // 255).astype(np.uint16))
            for ink in (4095, 4096)]
    if pages:
        deep[0].save(tmp_path / "pages.tif", save_all=True, append_images=deep[1:])
    else:
        for ink, image in zip((4095, 4096), deep):
            image.save(tmp_path / f"{ink}.png")
    inks = load_dataset(str(tmp_path)).images.max(axis=(1, 2, 3))
    assert len(inks) == 2
    np.testing.assert_allclose(inks, round(4096 / 16383 * 255) / 127.5 - 1, atol=1 / 127.5)


def test_a_thirty_two_bit_image_sets_no_white_for_sixteen_bit_ones(tmp_path):
    """A 32-bit integer TIFF with 18-bit values beside 16-bit PNGs: its white (2^32 - 1, the depth
    above 16 then) scaled every image of the folder to black, and the run trained on blank frames."""
    plain = glyph_image(ink=255, ground=0)
    Image.fromarray(np.asarray(plain, np.uint16) * 257).save(tmp_path / "a_16.png")
    Image.fromarray(np.asarray(plain, np.int32) * 1000).save(tmp_path / "b_32.tif")  # up to 255,000: 18 bits
    plain.save(tmp_path / "c_plain.png")
    sixteen, thirty_two, eight = load_dataset(str(tmp_path)).images
    np.testing.assert_array_equal(sixteen, eight)
    # 255,000 of 2^20 - 1 (the depth that holds 18 bits): a dim glyph, not a black frame
    np.testing.assert_allclose(thirty_two.max(), round(255_000 / (2 ** 20 - 1) * 255) / 127.5 - 1, atol=1 / 127.5)


def test_a_folder_of_dark_ink_on_white_has_a_white_ground_and_mixed_ones_are_said(tmp_path, capsys):
    """Training fills what a shift uncovers with the data's ground (test_codes.py); the metrics
    invert such a folder for the rune classifier. Both read the same 2-pixel frame."""
    for i in range(3):
        glyph_image(ink=0, ground=255).save(tmp_path / f"{i}.png")
    assert load_dataset(str(tmp_path)).ground == 1.0 and load_dataset("runes", 1, 0).ground == -1.0
    assert "dark on a light ground" not in capsys.readouterr().err
    glyph_image().save(tmp_path / "light.png")  # light ink on black among them
    assert load_dataset(str(tmp_path)).ground == 1.0
    said = " ".join(capsys.readouterr().err.split())
    assert "warning: 3 of 4 images in" in said and "are dark on a light ground, 1 light on dark" in said


def test_photos_are_turned_upright_by_their_exif_orientation(tmp_path):
    upright = glyph_image()
    upright.save(tmp_path / "a_upright.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to show", as phones write it
    upright.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "b_stored_sideways.png", exif=exif)
    shown_upright, shown_sideways = load_dataset(str(tmp_path)).images
    np.testing.assert_array_equal(shown_upright, shown_sideways)


def test_non_square_images_are_padded_not_squashed(tmp_path):
    wide = np.zeros((28, 56), np.uint8)
    wide[4:24, 18:38] = 255  # a 20x20 square
    Image.fromarray(wide).save(tmp_path / "wide.png")
    [square] = load_dataset(str(tmp_path)).images[:, :, :, 0]
    rows, cols = np.nonzero(square > 0)
    assert np.ptp(rows) == np.ptp(cols)  # still square, half as tall as before (the width set the scale)
    assert square[0, 0] == -1.0 and square[-1, -1] == -1.0  # padded with the border's black


def test_blank_images_are_counted_and_a_folder_of_them_refused(tmp_path, capsys):
    for i in range(3):
        Image.new("L", (28, 28), 80 * i).save(tmp_path / f"blank{i}.png")
    with pytest.raises(DataError, match="every image is one flat colour"):
        load_dataset(str(tmp_path))
    glyph_image().save(tmp_path / "glyph.png")
    assert len(load_dataset(str(tmp_path))) == 4
    assert "3 of 4 images" in capsys.readouterr().err


def bars():
    """Three bar glyphs, new images each time (a save leaves its encoder's settings on the images it
    was given, which a TIFF's save then took for its own)."""
    return [Image.fromarray(bar_glyph(kind, shift)) for kind, shift in (("across", 0), ("down", 4), ("cross", 8))]


def test_every_frame_of_an_animation_and_page_of_a_multi_page_file_is_an_image(tmp_path, capsys):
    """Each was read as its first frame only, without a word. Every frame is converted as a still
    image is (GIF frames after the first come composited, in RGB)."""
    (tmp_path / "animated").mkdir()
    (tmp_path / "stills").mkdir()
    for i, bar in enumerate(bars()):
        bar.save(tmp_path / "stills" / f"{i}.png")
    for name in ("bars.gif", "bars.png", "bars.webp", "pages.tif"):
        first, *more = bars()
        first.save(tmp_path / "animated" / name, save_all=True, append_images=more, lossless=name.endswith(".webp"))
    data = load_dataset(str(tmp_path))
    assert data.class_names == ("animated", "stills") and data.labels.tolist() == [0] * 12 + [1] * 3
    for start in range(0, 12, 3):  # in the order of their frames
        np.testing.assert_array_equal(data.images[start:start + 3], data.images[12:])
    assert "note: read 12 images from the frames or pages of 4 file(s)" in capsys.readouterr().err


@pytest.mark.skipif(not features.check("avif"), reason="this Pillow reads no AVIF")
def test_every_frame_of_an_animated_avif_is_an_image(tmp_path):
    """Read as its first frame only, without a word (lossy: counted, not compared)."""
    first, *more = bars()
    first.save(tmp_path / "bars.avif", save_all=True, append_images=more)
    assert len(load_dataset(str(tmp_path))) == 3


def test_the_further_frames_of_a_jpeg_are_no_images(tmp_path):
    """A phone's JPEG may hold a preview, a depth or a gain map of the same photo as further frames
    (MPO): one image."""
    first, *more = bars()
    first.save(tmp_path / "photo.jpg", format="MPO", save_all=True, append_images=more)
    assert Image.open(tmp_path / "photo.jpg").n_frames == 3
    assert len(load_dataset(str(tmp_path))) == 1


def test_an_animation_broken_part_way_is_skipped_and_named(tmp_path, capsys):
    first, *more = bars()
    first.save(tmp_path / "whole.gif", save_all=True, append_images=more)
    (tmp_path / "cut.gif").write_bytes((tmp_path / "whole.gif").read_bytes()[:-20])  # in its last frame
    assert len(load_dataset(str(tmp_path))) == 3
    said = capsys.readouterr().err
    assert "skipped 1 unreadable image file(s)" in said and said.rstrip().endswith(": cut.gif")


@pytest.mark.parametrize("suffix", [".gif", ".png", ".tif", ".webp"])
def test_an_animation_cut_or_damaged_anywhere_after_its_first_frame_is_no_traceback(tmp_path, suffix):
    """Reaching a broken later frame, Pillow raises TypeError, KeyError, IndexError, struct.error or
    SyntaxError (a GIF cut in its frame header, a TIFF page's tags, an APNG frame's checksum), no
    OSError: each would end the command in a traceback (a broken APNG chunk did, before frames were
    read). Read or skipped, never more, and without Pillow's warnings printed raw (a TIFF page's
    tags cut short: "Corrupt EXIF data", once for each)."""
    first, *more = bars()
    first.save(tmp_path / f"whole{suffix}", save_all=True, append_images=more, lossless=suffix == ".webp")
    whole = (tmp_path / f"whole{suffix}").read_bytes()
    (tmp_path / f"whole{suffix}").unlink()
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        for at in range(len(whole) // 3, len(whole), max(1, len(whole) // 150)):  # mostly past the first frame
            for damaged in (whole[:at], whole[:at] + bytes([whole[at] ^ 0xFF]) + whole[at + 1:]):
                (tmp_path / f"x{suffix}").write_bytes(damaged)
                try:
                    assert 1 <= len(load_dataset(str(tmp_path))) <= 3
                except DataError:
                    pass
    assert [str(warning.message) for warning in warned] == []


def test_still_image_formats_pillow_reads_are_read(tmp_path):
    """A folder of .pgm glyphs (or .jfif, .tga ...) was 'no images found': their suffixes were
    not among those read. The lossless ones give the PNG's glyph."""
    bar = Image.fromarray(bar_glyph("cross", 4))
    bar.save(tmp_path / "0.png")
    lossless = (".pbm", ".pgm", ".pnm", ".ppm", ".tga")
    lossy = (".ico", ".jfif", ".jpe") + ((".avif",) if features.check("avif") else ())
    for suffix in lossless + lossy:
        bar.save(tmp_path / f"bar{suffix}")
    Image.fromarray(np.asarray(bar, np.uint16) * 257).save(tmp_path / "deep.pgm")  # 16 bits, as 16-bit PNGs
    data = load_dataset(str(tmp_path))
    assert len(data) == 2 + len(lossless) + len(lossy)
    names = ["0.png", *sorted(f"bar{suffix}" for suffix in lossless + lossy), "deep.pgm"]
    for name in ("deep.pgm", *(f"bar{suffix}" for suffix in lossless)):
        np.testing.assert_array_equal(data.images[names.index(name)], data.images[0])


def test_a_folder_without_images_names_the_suffixes_it_holds(tmp_path):
    """Files of a format not read (HEIC photos, say) were 'no images found' with no word of what
    the folder held."""
    for name in ("a.heic", "b.HEIC", "README.txt", "labels.csv", "notes.md", ".hidden.jpg.swp"):
        (tmp_path / name).write_bytes(b"x")
    with pytest.raises(DataError, match=r"no images found \(\.apng, .*\); files there end in "
                                        r"\.csv, \.heic, \.md and 1 more$"):
        load_dataset(str(tmp_path))


@pytest.mark.parametrize("setup, message", [
    (lambda p: None, "no images found"),
    (lambda p: (p / "x.png").write_bytes(b"junk"), "could be read"),
])
def test_folder_without_usable_images(tmp_path, setup, message):
    setup(tmp_path)
    with pytest.raises(DataError, match=message):
        load_dataset(str(tmp_path))


def test_unknown_data_spec(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_dataset(str(tmp_path / "nope"))
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="not an MNIST"):
        load_dataset(str(tmp_path / "notes.txt"))
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"")
    with pytest.raises(DataError, match="give the folder that holds all four"):
        load_dataset(str(tmp_path / "train-images-idx3-ubyte.gz"))
