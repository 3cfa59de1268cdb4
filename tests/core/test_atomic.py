"""Atomic writes (runegen/core/atomic.py) write through symbolic links, as cp and a shell's `>` do:
the file a link points to gets the new content and the link stays a link."""

import os
import stat

import pytest
from PIL import Image

from conftest import assert_usage_error, run_cli_in_process
from runegen.core import atomic


def hidden(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


def test_a_write_through_a_link_writes_the_file_it_points_to(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (real / "grid.txt").write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to("real/grid.txt")  # relative, as `ln -s` makes them
    atomic.write_text(link, "new")
    assert link.is_symlink() and os.readlink(link) == "real/grid.txt"
    assert (real / "grid.txt").read_text() == "new"
    assert hidden(tmp_path) == [] and hidden(real) == []  # the temporary file went beside the real one


def test_a_dangling_link_gets_its_file_where_its_folder_exists(tmp_path):
    link = tmp_path / "link.txt"
    link.symlink_to(tmp_path / "not-yet.txt")
    atomic.write_text(link, "made")
    assert link.is_symlink() and (tmp_path / "not-yet.txt").read_text() == "made"
    lost = tmp_path / "lost.txt"
    lost.symlink_to(tmp_path / "no-folder" / "x.txt")
    with pytest.raises(FileNotFoundError):
        atomic.write_text(lost, "never")
    assert lost.is_symlink() and not (tmp_path / "no-folder").exists()
    looped = tmp_path / "loop.txt"
    looped.symlink_to(looped)
    with pytest.raises(OSError):  # ELOOP, not the link replaced by a file
        atomic.write_text(looped, "never")
    assert looped.is_symlink()


def test_generate_writes_through_a_link_and_refuses_a_dangling_one_before_any_work(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "grid.png").write_bytes(b"old")
    (tmp_path / "link.png").symlink_to("real/grid.png")
    result = run_cli_in_process("generate", "-n", "1", "--out", "link.png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "link.png").is_symlink()
    assert Image.open(tmp_path / "real" / "grid.png").size[0] > 28
    (tmp_path / "lost.png").symlink_to("gone/grid.png")
    assert_usage_error(run_cli_in_process("generate", "-n", "1", "--out", "lost.png", cwd=tmp_path),
                       "--out lost.png: cannot write (no folder")
    (tmp_path / "model.png").symlink_to("real/generator.onnx")  # a .png name on another kind of file
    assert_usage_error(run_cli_in_process("generate", "-n", "1", "--out", "model.png", cwd=tmp_path),
                       "--out model.png: a link to")


def test_a_report_link_to_a_model_is_refused(tmp_path):
    (tmp_path / "report.json").symlink_to("generator_f32.onnx")
    assert_usage_error(run_cli_in_process("bench", "m.onnx", "--json", "report.json", cwd=tmp_path),
                       "--json report.json: a link to")


def test_a_name_near_the_file_name_limit_is_written(tmp_path):
    """The temporary name (a dot, the stem, a dash, 8 characters, the suffix) went past the 255-byte
    limit for targets of 246 bytes and more: an OSError after a whole bench, its report lost."""
    target = tmp_path / ("é" * 100 + "b" * 50 + ".json")  # 255 bytes in UTF-8
    atomic.write_text(target, "{}")
    assert target.read_text() == "{}" and not hidden(tmp_path)


def test_a_fifo_is_written_into_not_replaced(tmp_path):
    """`--json p` where p is a FIFO a reader waits on: renamed over, the FIFO became a plain file
    and the reader got nothing (a device node, /dev/null among them, likewise)."""
    import threading

    fifo = tmp_path / "p"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    atomic.write_text(fifo, "{}")
    reader.join(10)
    assert got == ["{}"] and fifo.is_fifo() and not hidden(tmp_path)


def test_a_replaced_file_keeps_its_permissions(tmp_path):
    """A private 0600 file replaced by a write came back 0644, readable by everyone; a new file has
    the usual 0666 less the umask."""
    private = tmp_path / "private.json"
    private.write_text("old")
    private.chmod(0o600)
    atomic.write_text(private, "new")
    assert private.read_text() == "new" and stat.S_IMODE(private.stat().st_mode) == 0o600
    fresh = tmp_path / "fresh.json"
    atomic.write_text(fresh, "new")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~umask
