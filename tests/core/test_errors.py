"""One way an underlying error becomes a short reason (runegen/core/errors.py)."""

from runegen.core.errors import reason


def test_an_os_error_is_its_own_words_and_its_file():
    # not "[Errno 21] Is a directory: '/run/export/generator_f32.tflite.json'"
    assert reason(IsADirectoryError(21, "Is a directory", "/run/export/generator_f32.tflite.json")) == \
        "Is a directory: generator_f32.tflite.json"
    assert reason(PermissionError(13, "Permission denied")) == "Permission denied"
    assert reason(OSError("no errno")) == "no errno"


def test_other_errors_are_their_first_line_without_onnxruntime_prefix_and_cut():
    assert reason(ValueError("first line\nsecond line")) == "first line"
    assert reason(RuntimeError("[ONNXRuntimeError] : 7 : INVALID_PROTOBUF : Protobuf parsing failed.")) == \
        "Protobuf parsing failed."
    assert reason(ValueError("")) == "ValueError"
    assert reason(ValueError("x" * 500), limit=20) == "x" * 17 + "..."
