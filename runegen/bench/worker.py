"""One benchmark row, measured in a fresh process: `python -m runegen.bench.worker SPEC.json`.

A process per row because thread counts (BLAS, TensorFlow) are fixed when a library starts, peak
resident memory (ru_maxrss) only grows within a process, and a runtime that crashes takes only
its own row down. The result is one JSON object on the last line of stdout.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np  # the parent set the thread variables in this process's environment

from runegen.bench.limits import measure, timed
from runegen.core.devices import usable_cores
from runegen.core.errors import reason
from runegen.core.formats import FORMATS
from runegen.core.parity import Parity
from runegen.data.runes import CLASS_NAMES
from runegen.quality.classifier import OnnxClassifier, classifier_outputs
from runegen.quality.metrics import class_accuracy, recognisability
from runegen.quality.scorer import draw
from runegen.runtime import load_generator


def latency_summary(durations: list[float]) -> dict:
    ms = np.asarray(durations) * 1e3
    return {"runs": len(ms), "mean_ms": float(ms.mean()), "p50_ms": float(np.percentile(ms, 50)),
            "p90_ms": float(np.percentile(ms, 90)), "p99_ms": float(np.percentile(ms, 99)),
            "max_ms": float(ms.max())}


def speed(call_at, spec: dict) -> tuple[dict, dict]:
    """Batch-1 latency and images/s at each of spec's batches; call_at(batch) is a call that runs
    one batch. Each is run once at its shape first (TFLite reallocates on resize; a CUDA graph is
    captured)."""
    def durations(batch):
        call = call_at(batch)
        call()
        return timed(call, spec["min_seconds"], spec["runs"])

    latency, rates = latency_summary(durations(1)), {}
    for batch in spec["batches"]:
        seconds = durations(batch)
        rates[str(batch)] = batch * len(seconds) / sum(seconds)
    return latency, rates


def model_row(spec: dict) -> dict:
    figures: dict = {}
    start = time.perf_counter()
    generate, generator = _load(spec)
    inputs = generator.inputs
    figures["load_s"] = time.perf_counter() - start

    one = inputs(1, seed=0)
    start = time.perf_counter()
    generate(one)
    figures["first_inference_s"] = time.perf_counter() - start
    for _ in range(spec.get("warmup", 3)):
        generate(one)

    def from_host(batch):
        z = one if batch == 1 else inputs(batch, seed=batch)
        return lambda: generate(z)

    figures["latency_batch1"], figures["throughput"] = speed(from_host, spec)
    if generator.resident is not None:  # the same calls with latents and images left on the device
        figures["resident_latency_batch1"], figures["resident_throughput"] = speed(generator.resident, spec)
    figures["execution"] = generator.execution
    figures["flops_per_image"] = generator.metadata.get("flops_per_image")
    figures["described"] = generator.described
    figures["weights_digest"] = generator.metadata.get("weights_digest")

    outputs = generate(inputs(spec["parity_samples"], seed=spec["parity_seed"]))
    if spec.get("save_outputs"):
        np.save(spec["save_outputs"], outputs)
    if spec.get("reference"):
        figures["parity"] = Parity.between(np.load(spec["reference"]), outputs).as_dict()
    figures["finite"] = bool(np.isfinite(outputs).all())
    if spec.get("classifier"):
        figures["quality"] = quality(generate, generator, spec)
    report_placement = FORMATS[generator.format].placement
    if report_placement is not None:
        figures["placement"] = report_placement(generator.path, spec["device"], spec["threads"],
                                                Path(spec["profile"]) if spec.get("profile") else None)
    # The device's limit, measured now, on the same cores: this shared machine's speed drifts
    # (2x swings were seen), so a limit taken minutes earlier would not be comparable.
    figures["limit"] = measure(spec)
    return figures


def _load(spec: dict):
    """(generate function, the loaded Generator) for the row's runtime."""
    generator = load_generator(spec["path"], threads=spec["threads"], device=spec["device"],
                               **spec.get("options", {}))
    if spec["kind"] == "keras_eager":
        model = generator.model
        return (lambda z: np.asarray(model(z, training=False))), generator
    if spec["kind"] == "keras_predict":
        model = generator.model
        return (lambda z: model.predict(z, batch_size=len(z), verbose=0)), generator
    return generator.generate, generator


def quality(generate, generator, spec: dict) -> dict | None:
    """Recognisability (and class accuracy if conditional) of this row's own images, by the
    ONNX feature classifier (no TensorFlow): what int8 costs in quality, not only in error.
    None when the generator's classes are not the classifier's (the built-in runes)."""
    if generator.classes != list(CLASS_NAMES):
        return None
    n = spec["quality_samples"]
    images, labels = draw(generate, generator.latent_dim, generator.num_classes, n, generator.codes,
                          generator.code_weights)  # codes drawn as the runtime draws them
    _, probabilities = classifier_outputs(OnnxClassifier(Path(spec["classifier"]), spec["threads"]), images)
    share, coverage = recognisability(probabilities)
    result = {"samples": n, "recognisability": share, "class_coverage": coverage}
    if labels is not None:
        result["class_accuracy"] = class_accuracy(probabilities, labels)
    return result


def peak_rss_mb() -> float:
    """This process's peak resident memory. Linux's VmHWM starts afresh at exec; ru_maxrss does
    not (a worker forked from a parent holding TensorFlow would report the parent's peak)."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pin_to_cores(threads: int) -> None:
    """Run on exactly `threads` cores: thread-count settings alone are not always obeyed
    (TensorFlow's pools, a runtime's helper threads), and a 1-thread row must be one core."""
    if hasattr(os, "sched_setaffinity"):
        cores = sorted(os.sched_getaffinity(0))
        if threads < len(cores):
            os.sched_setaffinity(0, cores[:threads])


def main() -> None:
    spec = json.loads(open(sys.argv[1]).read())
    pin_to_cores(spec.get("threads") or usable_cores())
    try:
        figures = model_row(spec)
        figures["ok"] = True
    except Exception as error:  # noqa: BLE001 - the row reports any failure as its status
        figures = {"ok": False, "error": f"{type(error).__name__}: {reason(error, 300)}"}
    figures["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
