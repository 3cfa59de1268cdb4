"""Path options and arguments (runegen/commands/options.py's given_path): an empty or blank value
is refused in one line, never read as the current folder, by every command."""

import pytest

from conftest import ROOT, assert_usage_error, run_cli_in_process

SHIPPED = ROOT / "runegen" / "models" / "runes-s1" / "generator.keras"


@pytest.mark.parametrize("args, flag", [
    # each ran in the current folder: a preview of its subfolders, a training on it, an export into it
    (("data", "preview", "--data", "", "--out", "p.png"), "--data: ''"),
    (("data", "preview", "--out", " "), "--out: ' '"),
    (("train", "--data", "", "--out", "run"), "--data: ''"),
    (("train", "--out", "", "--samples-per-class", "1", "--batch-size", "100000"), "--out: ''"),
    (("evaluate", ""), "MODEL: ''"),
    (("evaluate", "--data", "", "--samples", "10"), "--data: ''"),
    (("evaluate", "--data", "nowhere", "--classifier", ""), "--classifier: ''"),
    (("evaluate", "--data", "nowhere", "--json", ""), "--json: ''"),
    (("classifier", "--data", "", "--out", "c.keras"), "--data: ''"),
    (("classifier", "--out", ""), "--out: ''"),
    (("export", "", "-f", "onnx", "-q", "f32"), "MODEL: ''"),
    (("export", SHIPPED, "-f", "onnx", "-q", "f32", "--out", ""), "--out: ''"),
    (("generate", ""), "MODEL: ''"),
    (("generate", "--out", ""), "--out: ''"),  # said "is a folder"
    (("bench", SHIPPED, "--profile", ""), "--profile: ''"),  # profiled into the current folder
    (("bench", SHIPPED, "--json", " "), "--json: ' '"),
])
def test_an_empty_path_is_refused_not_read_as_the_current_folder(tmp_path, args, flag):
    assert_usage_error(run_cli_in_process(*args, cwd=tmp_path), f"Invalid value for {flag}: an empty path")
    assert list(tmp_path.iterdir()) == []


def test_a_run_whose_config_names_no_data_is_refused_as_its_config(tmp_path):
    """A config.json's data is checked as --data is, and said to be the config's."""
    (tmp_path / "config.json").write_text('{"data": ""}')
    assert_usage_error(run_cli_in_process("train", "--resume", "--out", tmp_path),
                       f"--resume: {tmp_path / 'config.json'}: data '': Invalid value for --data: '': an empty path")
