"""load_generator's keyword options: an option the file's runtime does not take (a typo, or
`io_binding` for a .tflite file) is refused in one line that names what it takes, before loading."""

import importlib
import inspect

import pytest

from conftest import ROOT
from runegen.core.errors import RunegenError
from runegen.core.formats import FORMATS
from runegen.runtime import load_generator

SHIPPED = ROOT / "runegen" / "models" / "runes-s1"


@pytest.mark.parametrize("file, options, said", [
    ("generator_f32.onnx", {"cuda_graf": False}, r"cuda_graf for a \.onnx model \(it takes cuda_graph, io_binding\)"),
    ("generator_f32.onnx", {"xnnpack": False}, r"xnnpack for a \.onnx model"),
    ("generator_int8.tflite", {"io_binding": True, "cuda_graph": False},
     r"options cuda_graph, io_binding for a \.tflite model \(it takes xnnpack\)"),
    ("generator.keras", {"xnnpack": True}, r"xnnpack for a \.keras model \(it takes none\)"),
])
def test_an_option_the_runtime_does_not_take_is_refused(file, options, said):
    with pytest.raises(RunegenError, match=said):
        load_generator(SHIPPED / file, **options)


def test_the_options_each_runtime_takes_load():
    assert load_generator(SHIPPED / "generator_int8.tflite", xnnpack=False).format == "tflite"
    assert load_generator(SHIPPED / "generator_f32.onnx", io_binding=False, cuda_graph=False).format == "onnx"


@pytest.mark.parametrize("name", list(FORMATS))
def test_the_registry_names_each_loaders_options(name):
    """What the error lists is what the loader's signature takes (it drifts apart otherwise)."""
    fmt = FORMATS[name]
    module, function = fmt.load.__name__.rsplit(".", 1)
    parameters = inspect.signature(getattr(importlib.import_module(module), function)).parameters
    assert tuple(parameters)[:3] == ("path", "threads", "device")
    assert tuple(sorted(tuple(parameters)[3:])) == fmt.options
