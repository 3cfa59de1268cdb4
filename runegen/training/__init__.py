"""The training side, which imports TensorFlow: config.py (TrainConfig), nets.py (the presets),
spectral.py (D's extra layers), gan.py (the GAN step), objectives.py (the adversarial losses and
the R1 penalty), code_losses.py (the latent codes' loss terms), augment.py (DiffAugment),
distribute.py (tf.distribute strategies), resume.py (the stop signals, the record of the data a
resumed run must see again, the checkpoints' note mended where it was lost), run.py (a run in its
folder: data pipeline, checkpoints, samples, scores), logs.py (metrics.csv, progress.gif) and
tf_settings.py (the process-wide TensorFlow settings, tf.data without autotune).

Nothing here is imported at package import: config.py and distribute.py are TensorFlow-free at
import time, so the CLI reads them without starting TensorFlow.
"""
