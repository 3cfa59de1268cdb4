import numpy as np
import pytest

from runegen.training.nets import PRESETS


def count(model):
    return int(sum(np.prod(w.shape) for w in model.weights if "seed_generator" not in w.path))


def test_s1_matches_the_tutorial_parameter_counts():
    preset = PRESETS["s1"]
    assert preset.generator().count_params() == 2_330_944
    assert preset.discriminator().count_params() == 212_865


@pytest.mark.parametrize("name", ["s1", "s2"])
def test_shapes_and_output_range(name):
    preset = PRESETS[name]
    generator, discriminator = preset.generator(latent_dim=16), preset.discriminator()
    fakes = np.asarray(generator(np.random.default_rng(0).standard_normal((3, 16)).astype("f4")))
    assert fakes.shape == (3, 28, 28, 1) and np.abs(fakes).max() <= 1.0
    assert tuple(discriminator(fakes).shape) == (3, 1)


def test_s2_follows_seed_001_shapes():
    generator, discriminator = PRESETS["s2"].generator(), PRESETS["s2"].discriminator()
    assert [tuple(l.output.shape[1:]) for l in generator.layers if "conv2d_transpose" in l.name] == \
        [(14, 14, 128), (14, 14, 64), (28, 28, 1)]
    assert [tuple(l.output.shape[1:]) for l in discriminator.layers if l.name.startswith("conv2d")] == \
        [(14, 14, 32), (7, 7, 64), (3, 3, 128)]


@pytest.mark.parametrize("name, channels", [("s1", [32, 64]), ("s2", [16, 32, 64])])
def test_d_width_scales_only_the_discriminator(name, channels):
    """`--d-width 0.5`: D's convolutions at half the preset's channels; G stays the seed's."""
    generator, discriminator = PRESETS[name].pair(100, 0, None, True, 24, continuous=4, self_conditioned=True,
                                                  d_width=0.5)
    convolutions = [layer for layer in discriminator.layers if "conv2d" in layer.name]
    assert [layer.output.shape[-1] for layer in convolutions] == channels
    assert generator.count_params() == PRESETS[name].generator().count_params()
    logits, _ = discriminator({"image": np.zeros((2, 28, 28, 1), "f4"), "code": np.zeros((2,), "i4")})
    assert tuple(logits.shape) == (2, 1)


@pytest.mark.parametrize("kernel", [3, 4])
def test_d_kernel_sets_only_the_discriminator_kernels(kernel):
    """`--d-kernel 3`: s1's D convolves with 3x3 kernels, its layers' output shapes unchanged; 0 keeps
    each preset's own kernels (s1 5x5, s2 3x3); G stays the seed's."""
    def convolutions(name, d_kernel):
        generator, discriminator = PRESETS[name].pair(100, 0, None, True, 24, continuous=4, self_conditioned=True,
                                                      d_kernel=d_kernel)
        assert generator.count_params() == PRESETS[name].generator().count_params()
        return [layer for layer in discriminator.layers if "conv2d" in layer.name]

    assert {layer.kernel_size for layer in convolutions("s1", 0)} == {(5, 5)}
    assert {layer.kernel_size for layer in convolutions("s2", 0)} == {(3, 3)}
    assert {layer.kernel_size for layer in convolutions("s1", kernel)} == {(kernel, kernel)}
    assert ([tuple(layer.output.shape) for layer in convolutions("s1", kernel)]
            == [tuple(layer.output.shape) for layer in convolutions("s1", 0)])
    # s2's last convolution is "valid": its 3x3 output (7x7 input, stride 2) shrinks with bigger kernels
    assert [tuple(layer.output.shape[1:3]) for layer in convolutions("s2", kernel)] == [
        (14, 14), (7, 7), ((7 - kernel) // 2 + 1,) * 2]


def test_bf16_policy_keeps_float32_variables():
    generator = PRESETS["s1"].generator(dtype="mixed_bfloat16")
    assert {w.dtype for w in generator.trainable_weights} == {"float32"}
    assert count(generator) == count(PRESETS["s1"].generator())


def test_the_configs_preset_names_are_the_presets():
    """The train command's --preset choices come from config.py, which cannot import nets.py's
    PRESETS (TensorFlow): the two lists are one."""
    from runegen.training.config import PRESET_NAMES

    assert tuple(PRESETS) == PRESET_NAMES
