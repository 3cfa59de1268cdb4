"""Training on several devices and machines with TensorFlow's own tf.distribute.

Which strategy a run uses (`--devices`):
- "auto": `MultiWorkerMirroredStrategy` when `TF_CONFIG` names a cluster (one process per
  machine, started by the user, Slurm or Kubernetes), `MirroredStrategy` over every GPU when there
  are several, else the default strategy: one device, the code path every single-device run takes.
- a comma-separated list of devices ("/gpu:0,/gpu:1", or logical CPUs "/cpu:0,/cpu:1"):
  `MirroredStrategy` over those.

How runegen's GAN step (runegen/training/gan.py) keeps a run with R replicas the run with one device, for
the same global batch:
- every random draw of a step (latents, codes) is made once, for the global batch, outside the
  replicas, and each replica takes its own slice, as it does of the real batch: replicas get
  different noise, and together exactly what one device would have drawn;
- each replica's losses are sums over its slice divided by the global batch
  (`tf.nn.compute_average_loss`); the optimizers sum the replicas' gradients, so the update is the
  global mean's, and the reported losses are the sum over replicas;
- BatchNormalization uses the global batch's statistics (`synchronized=True`, set here);
- EMA is updated after the replicas, in cross-replica context.
Only the chief (worker 0) writes samples, metrics, logs and the generator; other workers write
their checkpoints to a scratch folder that is deleted (every worker must save: it is collective).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading

from runegen.core.errors import DeviceError, ReplicaSettingError, reason
from runegen.core.signals import STOP_SIGNALS


def make_strategy(devices: str = "auto"):
    """The tf.distribute strategy for `--devices`. Call it before any other TensorFlow work:
    MultiWorkerMirroredStrategy must set up its collectives before the runtime starts."""
    from runegen.core.quiet import import_tensorflow, quiet_native_stderr

    tf = import_tensorflow(start_runtime=False)
    names = listed_devices(devices)
    if names:  # checked outside the quiet block, whose noise would be replayed with the error
        with quiet_native_stderr():  # the runtime starts here, and probes for CUDA on CPU-only hosts
            here = tf.config.list_logical_devices()
        _check_devices(tf, names, here)
    waits_for_workers = devices == "auto" and cluster() is not None
    with _stoppable_wait() if waits_for_workers else contextlib.nullcontext():
        with quiet_native_stderr():
            return _strategy(tf, devices)


@contextlib.contextmanager
def _stoppable_wait():
    """Ctrl-C, SIGTERM and SIGHUP stop the process by their default actions while a cluster's
    strategy waits for every worker, unless it was started ignoring one (a shell's background job
    ignores Ctrl-C, nohup SIGHUP): that stays so, as in runegen.cli. The wait is in TensorFlow's
    C++, where Python's handlers never run, hence the default actions. For SIGTERM that is not
    enough: TensorFlow sets a handler of its own for it just before its server starts (tsl's
    SigtermNotifier, for preemption notices; it only notes the signal), and its Python binding holds
    the GIL for the whole wait, so no Python thread can undo that. So the wait is entered through
    TensorFlow's C API with ctypes, which lets go of the GIL, on a thread of its own, while this one
    sets the actions again every 10 ms (a SIGTERM within those 10 ms of TensorFlow's handler is only
    noted). The handlers the process had are put back after, over TensorFlow's SIGTERM handler."""
    if threading.current_thread() is not threading.main_thread():  # signals are the main thread's
        yield
        return
    # None: a handler set outside Python, left alone
    kept = {number: signal.getsignal(number) for number in STOP_SIGNALS}
    for number, handler in kept.items():
        if handler not in (signal.SIG_IGN, None):
            signal.signal(number, signal.SIG_DFL)
    undo = _wait_in_a_thread()
    try:
        yield
    finally:
        undo()
        for number, handler in kept.items():
            if handler is not None:
                signal.signal(number, handler)


def _wait_in_a_thread():
    """Points TensorFlow's binding of TFE_EnableCollectiveOps, where the strategy waits, at the C
    function called through ctypes on a thread of its own, the calling thread meanwhile keeping the
    stop signals' actions as Python has them. Returns what undoes that (nothing to undo where the C
    API cannot be reached so: the binding then waits as before, SIGTERM noted only)."""
    import ctypes

    try:
        from tensorflow.python import _pywrap_tfe, pywrap_tfe
        from tensorflow.python.framework import errors_impl

        binding = pywrap_tfe.TFE_EnableCollectiveOps
        library = ctypes.CDLL(_pywrap_tfe.__file__)  # and the libraries it needs: the C API
        enable, new_status = library.TFE_EnableCollectiveOps, library.TF_NewStatus
        code, message, delete_status = library.TF_GetCode, library.TF_Message, library.TF_DeleteStatus
    except (ImportError, OSError, AttributeError):
        return lambda: None
    enable.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_void_p]
    enable.restype = delete_status.restype = None
    new_status.restype, message.restype = ctypes.c_void_p, ctypes.c_char_p
    code.argtypes = message.argtypes = delete_status.argtypes = [ctypes.c_void_p]
    capsule_pointer = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.py_object, ctypes.c_char_p)(
        ("PyCapsule_GetPointer", ctypes.pythonapi))

    def enable_collective_ops(context, server_def: bytes) -> None:
        status, done = new_status(), threading.Event()

        def wait() -> None:  # holds `context` (the capsule) and `server_def` until TensorFlow returns
            try:
                enable(capsule_pointer(context, None), server_def, len(server_def), status)
            finally:
                done.set()

        try:
            threading.Thread(target=wait, name="runegen-cluster-wait", daemon=True).start()
        except BaseException:
            delete_status(status)
            raise
        raised = None
        while not done.is_set():
            try:
                done.wait(0.01)
                for number in STOP_SIGNALS:
                    handler = signal.getsignal(number)  # SIG_DFL, or SIG_IGN where it was ignored
                    if handler is not None:
                        signal.signal(number, handler)  # again, over TensorFlow's
            except BaseException as error:  # another Python handler raised: after the wait, as the
                raised = raised or error  # binding ran handlers, never with TensorFlow mid-wait
        if raised is not None:
            delete_status(status)
            raise raised
        try:
            if code(status):  # raised as the binding raises it
                raise errors_impl.exception_type_from_error_code(code(status))(
                    None, None, message(status).decode(errors="replace"))
        finally:
            delete_status(status)

    pywrap_tfe.TFE_EnableCollectiveOps = enable_collective_ops

    def undo() -> None:
        pywrap_tfe.TFE_EnableCollectiveOps = binding

    return undo


# DiffAugment draws its randomness inside each replica, so replicas would not augment alike.
ONE_DEVICE_ONLY = "DiffAugment runs on one device only (its draws are per replica)"


def check_replica_settings(config, replicas: int) -> None:
    """Refuse, before any step, what the run's replicas cannot run: DiffAugment on several, a
    batch that leaves a replica an odd share of mode seeking's pairs, or one they cannot share
    evenly (each replica took batch // replicas rows, the rest were left out of every step, and
    the losses still divided by the whole batch)."""
    if replicas > 1 and config.diffaugment:
        raise ReplicaSettingError(ONE_DEVICE_ONLY)
    unpaired = config.mode_seeking and unpaired_batch(config.batch_size, replicas)
    if unpaired:
        raise ReplicaSettingError(unpaired)
    if config.batch_size % replicas:
        raise ReplicaSettingError(f"the batch of {config.batch_size} does not split evenly over {replicas} replicas "
                                  f"({config.batch_size % replicas} of its images would be left out of every step): "
                                  f"give a multiple of {replicas}")


def unpaired_batch(batch_size: int, replicas: int) -> str | None:
    """Why mode seeking, which pairs the latents of each replica's batch, cannot run this global
    batch on these replicas (None: it can)."""
    if batch_size % (2 * replicas):
        return (f"mode seeking pairs the latents of each replica's batch: the batch of {batch_size} "
                f"must be a multiple of {2 * replicas} on {replicas} replica{'s' if replicas != 1 else ''}")
    return None


def listed_devices(devices: str) -> list[str]:
    """The devices a `--devices` list names ([] for "auto", which TensorFlow resolves)."""
    if devices == "auto":
        return []
    names = [name.strip() for name in devices.split(",") if name.strip()]
    if not names:
        raise DeviceError(f"{devices!r} names no device (auto, or a list such as /gpu:0,/gpu:1)")
    lowered = [name.lower() for name in names]
    if lowered == ["all"]:  # was read as a device's name
        raise DeviceError("all: no device's name; auto takes every GPU (or TF_CONFIG's cluster)")
    repeated = sorted({name for name in names if lowered.count(name.lower()) > 1})
    if repeated:
        raise DeviceError(f"{devices}: {', '.join(repeated)} named twice (each device holds one replica)")
    return names


def _strategy(tf, devices: str):
    if devices != "auto":
        try:
            return tf.distribute.MirroredStrategy(listed_devices(devices))
        except tf.errors.InvalidArgumentError as error:  # a job, replica or task this process is not
            raise DeviceError(f"{devices}: {reason(error)}") from None
    if cluster():
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy([gpu.name for gpu in gpus])
    return tf.distribute.get_strategy()


def _check_devices(tf, names: list[str], here) -> None:
    """Each of `names` must be a device of this process: MirroredStrategy accepts one that does
    not exist (a second CPU that was never split off) and its first step then waits forever."""
    known = {(d.device_type, int(d.name.rsplit(":", 1)[1])): d.name for d in here}
    named: dict[tuple, str] = {}  # device -> the name that named it first
    for name in names:
        try:
            spec = tf.DeviceSpec.from_string(name)
        except ValueError:
            spec = None
        device = (str(spec.device_type).upper(), spec.device_index or 0) if spec is not None else None
        if device not in known:
            cpu_hint = ("; two CPU replicas need logical CPUs split off before TensorFlow starts"
                        if spec is not None and str(spec.device_type).upper() == "CPU" else "")
            raise DeviceError(f"{name}: not a device of this process (it has "
                              f"{', '.join(sorted(known.values()))}{cpu_hint})")
        if device in named:  # /cpu:0 and /device:CPU:0: TensorFlow's AssertionError
            raise DeviceError(f"{name}: the same device as {named[device]} (each device holds one replica)")
        named[device] = name


def cluster() -> dict | None:
    """TF_CONFIG's cluster spec, when it names more than one worker. A TF_CONFIG that is not one
    is refused: ignored, each machine of the job would train a run of its own."""
    text = os.environ.get("TF_CONFIG", "").strip()
    if not text:
        return None
    try:
        config = json.loads(text)
    except ValueError as error:
        raise DeviceError(f"TF_CONFIG is not JSON ({reason(error)})") from None
    jobs = config.get("cluster") if isinstance(config, dict) else None
    if not isinstance(jobs, dict) or not all(isinstance(hosts, list) and all(isinstance(h, str) for h in hosts)
                                             for hosts in jobs.values()):
        raise DeviceError('TF_CONFIG: expected {"cluster": {"worker": ["host:port", ...]}, "task": '
                          '{"type": "worker", "index": i}}')
    hosts = len(jobs.get("worker", [])) + len(jobs.get("chief", []))
    task = config.get("task")
    if hosts < 2 and task is None:  # one host, and no task to check: one device
        return None
    kind, index = (task.get("type"), task.get("index", 0)) if isinstance(task, dict) else (None, None)
    index = int(index) if str(index).strip().isdecimal() else None  # TensorFlow takes "1" too
    if kind == "evaluator":  # TensorFlow's strategy fails on one: KeyError 'evaluator'
        raise DeviceError("TF_CONFIG: an evaluator task: runegen train runs workers (and a chief) only; "
                          "the chief scores the run as it trains (--eval-every)")
    if kind not in jobs or index is None or index >= len(jobs[kind]):  # else each machine trains its own run
        listed = ", ".join(f"{job} 0..{len(names) - 1}" for job, names in jobs.items() if names) or "no host"
        raise DeviceError(f"TF_CONFIG: its task {task!r} is not one of its cluster's ({listed})")
    return {**config, "task": {**task, "index": index}} if hosts >= 2 else None


def is_chief() -> bool:
    """This process is the chief: worker 0 (or "chief") of the TF_CONFIG cluster, or the only
    process. Read from TF_CONFIG alone, so the CLI knows before TensorFlow starts."""
    config = cluster()
    if config is None:
        return True
    task = config["task"]
    return task["type"] == "chief" or (task["type"] == "worker" and task["index"] == 0 and "chief" not in config["cluster"])


def describe(strategy) -> str:
    name = type(strategy).__name__
    replicas = strategy.num_replicas_in_sync
    return ("one device" if name == "_DefaultDistributionStrategy"
            else f"{name}, {replicas} replica{'s' if replicas != 1 else ''}")


def replica_slice(tensor, global_batch):
    """This replica's rows of a global-batch tensor (all of it with one replica)."""
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    replicas = context.num_replicas_in_sync
    if replicas == 1:
        return tensor
    size = global_batch // replicas
    return tensor[context.replica_id_in_sync_group * size:(context.replica_id_in_sync_group + 1) * size]


def synchronize_batch_norm(model) -> None:
    """BatchNormalization over the global batch: its statistics all-reduced across replicas."""
    import keras

    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized = True
