"""The terms of the GAN step, each on its own (runegen/training/gan.py, code_losses.py, spectral.py,
augment.py): spectral norm, Q's reading of the continuous codes, mode seeking, the
self-conditioned discriminator, code balance, and the shift that code invariance compares."""

import dataclasses

import numpy as np

from conftest import assert_usage_error, run_cli_in_process


def test_spectral_norm_bounds_the_kernel_and_passes_gradients():
    import tensorflow as tf

    import keras

    from runegen.training.spectral import SpectralConv2D, SpectralDense

    # Seeded kernels: 50 power iterations reach 1e-3 for most, not all (1 of 20 seeds tried: when
    # the two largest singular values lie close, the iteration converges slowly).
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    for layer, x in [(SpectralConv2D(8, 3), rng.standard_normal((2, 6, 6, 3))),
                     (SpectralDense(5), rng.standard_normal((2, 7)))]:
        x = tf.constant(x, tf.float32)
        layer(x, training=True)
        layer.kernel.assign(layer.kernel * 40.0)
        for _ in range(50):  # power iteration converges on the largest singular value
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(layer(x, training=True))
        kernel = np.asarray(layer.normalized_kernel(training=False))
        sigma = np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0]
        assert abs(sigma - 1.0) < 1e-3, sigma
        gradient = tape.gradient(loss, layer.kernel)
        assert gradient is not None and np.abs(np.asarray(gradient)).sum() > 0


def test_continuous_codes_are_read_back_by_q():
    """Q's last outputs estimate the Gaussian columns just before the one-hot: the info loss is
    their half squared error, so a Q that reads them back exactly pays only the cross-entropy."""
    import tensorflow as tf

    from runegen.training.gan import DCGAN
    from runegen.training.nets import PRESETS
    from runegen.training.config import TrainConfig

    config = TrainConfig(codes=24, continuous_codes=4, ema=0, lr_decay=0)
    generator, discriminator = PRESETS["s1"].pair(100, 0, None, True, 24, continuous=4)
    gan = DCGAN(generator, discriminator, config)
    inputs, codes = gan.generator_inputs(8)
    _, q = gan._discriminate(generator(inputs), codes)
    assert q.shape == (8, 28)
    exact = tf.concat([q[:, :24], inputs[:, 72:76]], axis=1)  # columns 72..75: before the one-hot
    import keras

    # per example: the cross-entropy alone where Q reads the continuous codes back exactly
    cross_entropy = keras.losses.sparse_categorical_crossentropy(codes, q[:, :24], from_logits=True)
    np.testing.assert_allclose(gan._info_loss(exact, inputs, codes), cross_entropy, rtol=1e-6)
    assert float(tf.reduce_mean(gan._info_loss(q, inputs, codes))) > float(tf.reduce_mean(cross_entropy))
    # --continuous-weight scales the regression only, never the cross-entropy
    half_squared_error = 0.5 * tf.reduce_sum(tf.square(q[:, 24:] - inputs[:, 72:76]), axis=1)
    heavier = DCGAN(generator, discriminator, dataclasses.replace(config, continuous_weight=3.0))
    np.testing.assert_allclose(heavier._info_loss(q, inputs, codes), cross_entropy + 3.0 * half_squared_error,
                               rtol=1e-5)
    report = gan.train_step(tf.random.normal([8, 28, 28, 1]), tf.zeros([8], tf.int32))
    assert all(np.isfinite(float(v)) for v in report.values())


def test_mode_seeking_pairs_share_a_code_and_stop_pushing_at_the_target():
    """Latents come in pairs (2k, 2k + 1) with one code and different noise; the term is its
    weight for a pair drawn as one image, falls linearly, and is 0 from the target ratio on."""
    import tensorflow as tf

    from runegen.training.config import TrainConfig
    from runegen.training.gan import DCGAN
    from runegen.training.nets import PRESETS

    config = TrainConfig(codes=24, continuous_codes=0, mode_seeking=2.0, mode_seeking_target=0.2, ema=0, lr_decay=0)
    generator, discriminator = PRESETS["s1"].pair(100, 0, None, True, 24)
    gan = DCGAN(generator, discriminator, config)
    inputs, codes = gan.generator_inputs(8)
    np.testing.assert_array_equal(codes[0::2], codes[1::2])
    noise_distance = np.abs(inputs[0::2, :76] - inputs[1::2, :76]).mean(axis=1)
    assert (noise_distance > 0.5).all()  # the noise of a pair differs

    base = tf.zeros([4, 28, 28, 1])
    shift = tf.reshape(tf.constant(noise_distance, tf.float32), [4, 1, 1, 1])
    # pair k's images differ by `fraction` of the target everywhere
    for fraction, expected in [(0.0, 2.0), (0.5, 1.0), (1.0, 0.0), (3.0, 0.0)]:
        second = base + fraction * 0.2 * shift
        images = tf.reshape(tf.stack([base, second], axis=1), [8, 28, 28, 1])
        np.testing.assert_allclose(gan._mode_seeking_loss(inputs, images), np.full(8, expected), atol=1e-5)
    report = gan.train_step(tf.random.normal([8, 28, 28, 1]), tf.zeros([8], tf.int32))
    assert all(np.isfinite(float(v)) for v in report.values())


def test_mode_seeking_needs_an_even_batch(tmp_path):
    result = run_cli_in_process("train", "--mode-seeking", "1", "--batch-size", "15", "--out", tmp_path / "r")
    assert_usage_error(result, "must be even")
    assert not (tmp_path / "r").exists()


def test_mode_seeking_trains_on_the_default_devices(tmp_path):
    """--devices auto was counted as 0 replicas: a ZeroDivisionError traceback before training."""
    result = run_cli_in_process("train", "--mode-seeking", "1", "--epochs", "1", "--batch-size", "8",
                                "--samples-per-class", "1", "--eval-every", "0", "--codes", "6",
                                "--out", tmp_path / "r")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "r" / "generator.keras").exists()


def test_self_conditioned_discriminator_judges_fakes_by_code_and_real_images_by_q():
    """With --self-conditioning D's logit gains embed(code)·phi(x): the fakes' own code, or for a
    real image (code -1) the code Q reads in it; Q's reading carries no gradient."""
    import tensorflow as tf

    from runegen.training.config import TrainConfig
    from runegen.training.gan import DCGAN
    from runegen.training.nets import PRESETS, QReading

    q = tf.constant([[0.1, 3.0, 0.2], [2.0, 0.0, 1.0]])
    np.testing.assert_array_equal(QReading(3)([tf.constant([-1, -1]), q]), [1, 0])
    np.testing.assert_array_equal(QReading(3)([tf.constant([2, -1]), q]), [2, 0])

    generator, discriminator = PRESETS["s1"].pair(100, 0, None, True, 24, self_conditioned=True)
    images = tf.random.normal([4, 28, 28, 1])
    logits, q = discriminator([images, tf.constant([-1] * 4)])
    read = np.argmax(np.asarray(q), axis=1)
    np.testing.assert_allclose(discriminator([images, tf.constant(read)])[0], logits, rtol=1e-5)
    other = (read + 1) % 24  # another code changes the logit, and only the logit
    moved, same_q = discriminator([images, tf.constant(other)])
    discriminator.get_layer("code_embedding").embeddings.assign(tf.random.normal([24, 6272]))
    assert not np.allclose(discriminator([images, tf.constant(other)])[0], moved)
    np.testing.assert_allclose(same_q, q)

    gan = DCGAN(generator, discriminator, TrainConfig(codes=24, continuous_codes=0, self_conditioning=True, ema=0,
                                                      lr_decay=0))
    report = gan.train_step(tf.random.normal([8, 28, 28, 1]), tf.zeros([8], tf.int32))
    assert all(np.isfinite(float(v)) for v in report.values())


def test_balance_is_zero_for_confident_even_readings_and_grows_with_doubt_or_crowding():
    import tensorflow as tf

    from runegen.training.code_losses import balance_loss

    confident = 30.0 * np.eye(24, dtype=np.float32)
    even = balance_loss(tf.constant(confident[np.arange(48) % 24]), 24)
    crowded = balance_loss(tf.constant(confident[np.zeros(48, int)]), 24)  # all read as code 0
    unsure = balance_loss(tf.zeros([48, 24]), 24)
    assert even.shape == (48,) and float(even[0]) < 1e-5
    np.testing.assert_allclose(crowded, np.log(24), rtol=1e-4)  # every code but one left empty
    np.testing.assert_allclose(unsure, np.log(24), rtol=1e-4)  # spread, but no reading at all


def test_translate_moves_glyphs_on_a_blank_background_and_invariance_compares_readings():
    import tensorflow as tf

    from runegen.training.augment import translate
    from runegen.training.code_losses import invariance_loss

    images = -np.ones([16, 28, 28, 1], np.float32)
    images[:, 10:18, 12:14] = 1.0  # a stroke in the middle
    shifts = np.stack([np.arange(16) % 5 - 2, np.arange(16) // 4 - 2], axis=1).astype(np.int32)
    moved = np.asarray(translate(tf.constant(images), tf.constant(shifts)))
    assert moved.min() == -1.0 and moved.max() == 1.0  # blank stays blank: nothing grey comes in
    for image, (down, right) in zip(moved, shifts):
        np.testing.assert_array_equal(image, np.roll(images[0], (down, right), axis=(0, 1)))
    # dark ink on white (a folder of scans keeps its polarity): the edge a shift uncovers is white,
    # where it was filled black, two black bands the real images never have
    on_white = np.asarray(translate(tf.constant(-images), tf.constant(shifts), ground=1.0))
    np.testing.assert_array_equal(on_white, -moved)

    confident = tf.constant(30.0 * np.eye(24, dtype=np.float32)[np.arange(48) % 24])
    other = tf.constant(30.0 * np.eye(24, dtype=np.float32)[(np.arange(48) + 1) % 24])
    assert float(tf.reduce_max(invariance_loss(confident, confident, 24))) < 1e-5
    assert float(tf.reduce_min(invariance_loss(confident, other, 24))) > 20  # another code read
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(other)
        tape.watch(confident)
        loss = tf.reduce_sum(invariance_loss(other, confident, 24))
    assert tape.gradient(loss, other) is None  # the unshifted reading is the target, held fixed
    assert float(tf.reduce_max(tf.abs(tape.gradient(loss, confident)))) > 0


def test_r1_penalty_is_the_squared_gradient_at_real_images_and_differentiable():
    """For D(x) = w·x the gradient at every image is w: the penalty is |w|² for each, and its own
    gradient in w (what D's step follows) is 2w."""
    import tensorflow as tf

    from runegen.training.objectives import r1_penalty

    rng = np.random.default_rng(0)
    w = tf.Variable(rng.standard_normal((28, 28, 1)), dtype=tf.float32)
    images = tf.constant(rng.standard_normal((3, 28, 28, 1)), tf.float32)

    def linear(x):
        return tf.reduce_sum(x * w, axis=[1, 2, 3])[:, None]

    with tf.GradientTape() as tape:
        penalty = r1_penalty(linear, images)
        mean = tf.reduce_mean(penalty)
    np.testing.assert_allclose(penalty, [float(tf.reduce_sum(w * w))] * 3, rtol=1e-5)
    np.testing.assert_allclose(tape.gradient(mean, w), 2 * w.numpy(), rtol=1e-5)
    # D(x) = |x|²: the gradient is 2x, so the penalty grows with each image's own size
    squares = r1_penalty(lambda x: tf.reduce_sum(x * x, axis=[1, 2, 3])[:, None], images)
    np.testing.assert_allclose(squares, 4 * np.sum(images.numpy() ** 2, axis=(1, 2, 3)), rtol=1e-5)


def test_r1_is_paid_lazily_on_every_r1_every_th_d_step_at_that_many_times_the_weight():
    import tensorflow as tf

    from runegen.training.config import TrainConfig
    from runegen.training.gan import DCGAN
    from runegen.training.nets import PRESETS
    from runegen.training.objectives import r1_penalty

    config = TrainConfig(codes=24, continuous_codes=0, ema=0, lr_decay=0, r1=0.5, r1_every=3)
    # s2's own D (BatchNorm, no dropout, no power iteration): the same logits at every call
    generator, discriminator = PRESETS["s2"].pair(100, 0, None, False, 24, self_conditioned=True)
    gan = DCGAN(generator, discriminator, config)
    real = tf.constant(np.random.default_rng(1).uniform(-1, 1, (4, 28, 28, 1)), tf.float32)
    labels = tf.zeros([4], tf.int32)
    expected = r1_penalty(lambda x: gan._discriminate(x, labels, real=True)[0], real) * 0.5 * 0.5 * 3
    paid = []
    for step in range(7):
        gan.d_optimizer.iterations.assign(step)
        paid.append(np.asarray(gan._r1_loss(real, labels)))
    for step in (0, 3, 6):
        np.testing.assert_allclose(paid[step], expected, rtol=1e-4)
    assert all(not paid[step].any() for step in (1, 2, 4, 5))
    assert DCGAN(generator, discriminator, dataclasses.replace(config, r1=0.0))._r1_loss(real, labels) == 0.0
