"""`runegen train`'s data, loaded while TensorFlow starts: the built-in runes are drawn in a
second process during TensorFlow's import, which takes about as long (commands/train.py calls it)."""

from __future__ import annotations

# Built-in sets at least this large are drawn beside TensorFlow's import; below it, starting a
# second process costs more than the drawing (about 0.4 ms a rune).
DRAWN_BESIDE_IMPORT = 2_000


def load_while_tensorflow_starts(config):
    """The training data. The built-in runes are drawn in a second process while this one imports
    TensorFlow: on a 2-core AMD EPYC Zen 4 each takes about 4 s, 7.4 s one after the other and
    4.8 s side by side (a thread gains nothing: both hold the GIL). Other data, small sets, and a
    process that has TensorFlow already (a test calling the command) load here."""
    import sys

    from runegen.data import load_dataset
    from runegen.data.runes import CLASS_NAMES

    args = (config.data, config.samples_per_class, config.seed)
    if (config.data != "runes" or "tensorflow" in sys.modules
            or config.samples_per_class * len(CLASS_NAMES) < DRAWN_BESIDE_IMPORT):
        return load_dataset(*args)
    return loaded_beside_tensorflow(*args)


def loaded_beside_tensorflow(*args):
    """load_dataset(*args) in a spawned process (safe beside threads, on every OS) while this one
    imports TensorFlow; the same arrays as drawn here (tests/training/test_train.py)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    from runegen.core.quiet import import_tensorflow
    from runegen.data import load_dataset

    try:
        pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    except (OSError, ImportError):  # no process pool on this system (no POSIX semaphores)
        return load_dataset(*args)
    # Started before the import, so the drawing process keeps the real stderr that the import hides.
    with pool:
        drawing = pool.submit(load_dataset, *args)
        import_tensorflow(start_runtime=False)  # a cluster's strategy starts the runtime
        try:
            return drawing.result()  # a DataError raised there is raised here
        except BrokenProcessPool:  # the drawing process was killed (out of memory, say): draw here
            return load_dataset(*args)
