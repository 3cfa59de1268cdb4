"""The bench on a briefly trained generator with few, short runs: every figure is in the JSON,
statuses are right for a corrupted file and a file with wrong weights, devices are checked."""

import json
import shutil

import pytest

from conftest import ROOT, assert_usage_error, run_cli, run_cli_in_process, run_cli_without_tensorflow
from runegen.export import export, load_keras_generator
from runegen.core.errors import ModelFileError
from runegen.core.formats import FORMATS
from runegen.training.nets import PRESETS

SHIPPED = ROOT / "runegen" / "models" / "runes-s1"
# 24 images a row for the quality column (the command's default is 500): its figures are checked, not their precision
QUICK = ("--threads", "1", "--batches", "1,4", "--min-seconds", "0.02", "--runs", "2", "--quality-samples", "24")


@pytest.fixture(scope="module")
def bench_run(trained_generator, exported, tmp_path_factory):
    """A run folder whose export holds one corrupted file and one file with other weights."""
    run = tmp_path_factory.mktemp("bench") / "run"
    shutil.copytree(trained_generator.parent, run, ignore=shutil.ignore_patterns("checkpoints", "tensorboard"))
    shutil.copytree(exported[0], run / "export")
    corrupted = run / "export" / "generator_int8.onnx"
    corrupted.write_bytes(corrupted.read_bytes()[: corrupted.stat().st_size // 2])

    untrained = run.parent / "untrained" / "generator.keras"  # same shapes, other weights
    untrained.parent.mkdir()
    PRESETS["s1"].generator().save(untrained)
    for described in ("config.json", "classes.json", "code_weights.json"):  # the same run's, but for weights
        shutil.copy(trained_generator.parent / described, untrained.parent)
    f32_tflite = next(v for v in FORMATS["tflite"].variants if v.name == "f32")
    impostor_folder = run.parent / "impostor"
    [result] = export(load_keras_generator(untrained), [f32_tflite], impostor_folder)
    for name in ("generator_f32.tflite", "generator_f32.tflite.json"):  # as an export into the folder leaves them
        shutil.copy(impostor_folder / name, run / "export" / name)

    report_path, markdown_path = run.parent / "bench.json", run.parent / "bench.md"
    result = run_cli("bench", run, *QUICK, "--json", report_path, "--markdown", markdown_path,
                     "--profile", run.parent / "profiles")
    # a corrupted file (❌) and an impostor (❎ twice): the bench says so and exits 1, report written
    assert result.returncode == 1, result.stdout + result.stderr
    assert "3 of 15 rows failed" in result.stderr  # the int8 ONNX row, the f32 TFLite rows (2)
    return json.loads(report_path.read_text()), markdown_path.read_text(), result, report_path


def statuses(report):
    return {(r["format"], r["variant"], r["runtime"]): r["status"] for r in report["rows"]}


@pytest.mark.slow
def test_json_has_every_figure(bench_run):
    report, _, result, _ = bench_run
    import onnxruntime

    versions = report["environment"]["versions"]
    assert report["environment"]["cores"] >= 1
    # as imported, with the distribution that provides the module (onnxruntime or onnxruntime-gpu)
    assert versions["onnxruntime"].split()[1] == onnxruntime.__version__
    assert report["flops_per_image"] == 103_488_000  # s1: 51.7 M multiply-adds per image
    assert report["limits"]["numpy SGEMM fp32, 1 thr"] > 0
    assert report["reference"] == "keras eager"
    assert len(report["rows"]) == 2 + 3 + 2 * 5  # Keras call/predict, 3 ONNX, 5 TFLite x (XNNPACK or not)
    for row in report["rows"]:
        figures = row["figures"]
        assert figures["peak_rss_mb"] > 0
        if row["status"] == "❌":
            continue
        assert set(figures["latency_batch1"]) == {"runs", "mean_ms", "p50_ms", "p90_ms", "p99_ms", "max_ms"}
        assert set(figures["throughput"]) == {"1", "4"} and figures["load_s"] >= 0
        assert figures["first_inference_s"] > 0 and {"max_abs", "mean_abs", "psnr"} <= set(figures["parity"])
        assert row["gflops"]["1"] > 0 and 0 < row["share_of_limit"]["4"]
        assert figures["limit"]["name"] == "numpy SGEMM fp32"  # the CPU's own limit, in the row's process
        if row["format"] == "onnx":  # every node on the row's own provider, from the profiler
            assert set(figures["placement"]) == {"CPUExecutionProvider"}
        # Each row's own images scored by the shipped rune classifier (a barely trained generator:
        # the value is low, but it is measured per format).
        assert figures["quality"]["samples"] == 24 and 0 <= figures["quality"]["recognisability"] <= 1
    assert [t["target"] for t in report["targets"]] == [
        "best fp32 runtime vs SGEMM peak, batch 64", "best runtime vs Keras eager call, batch 1",
        "best full-int8 vs best fp32 throughput, batch 64", "best int8 batch-1 p50 latency, one thread"]
    assert "runegen bench" in result.stdout and "target best" in result.stdout
    profiles = sorted(p.name for p in (bench_run[3].parent / "profiles").iterdir())
    assert profiles == ["onnx_f16_cpu_1thr.json", "onnx_f32_cpu_1thr.json"]  # int8 is the corrupted one


@pytest.mark.slow
def test_statuses(bench_run):
    report = bench_run[0]
    status = statuses(report)
    assert status[("onnx", "int8", "onnxruntime")] == "❌"  # truncated file
    assert status[("tflite", "f32", "LiteRT+XNNPACK")] == "❎"  # runs, other weights
    assert status[("tflite", "f32", "LiteRT")] == "❎"
    assert status[("onnx", "f32", "onnxruntime")] == "✅"
    assert status[("tflite", "int8", "LiteRT+XNNPACK")] == "✅"
    assert status[("tflite", "int8", "LiteRT")] == "✅"
    assert status[("keras", "eager", "Keras call")] == "✅"
    # why the impostor fails is said: its metadata names other weights than the reference's
    [other] = [note for note in report["notes"] if "other weights" in note]
    assert "generator_f32.tflite" in other and "generator.keras" in other


@pytest.mark.slow
def test_markdown_and_compare(bench_run, tmp_path):
    report, markdown, _, report_path = bench_run
    assert markdown.startswith("| status | format | variant |")
    assert markdown.count("\n|") >= len(report["rows"]) + 1
    export_only = tmp_path / "export"  # two of the files: enough rows to compare, a third of the time
    export_only.mkdir()
    for name in ("generator_f32.onnx", "generator_int8.tflite", "generator_int8.tflite.json"):
        shutil.copy(report_path.parent / "run" / "export" / name, export_only)
    result = run_cli_without_tensorflow("bench", export_only, *QUICK, "--compare", report_path,
                                        "--accept-failures", cwd=tmp_path)
    assert result.returncode == 0, result.stderr  # failed rows accepted
    assert "parity reference: onnx f32" in result.stdout  # no Keras without TensorFlow
    assert "new/old: throughput b1" in result.stdout  # ratios to the earlier run
    assert "not in the earlier run" not in result.stdout  # its rows are all in the earlier one


def test_unavailable_device_and_bad_flags(trained_generator, exported, tmp_path):
    assert_usage_error(run_cli_in_process("bench", trained_generator, "--device", "cuda"), "available: cpu")
    assert_usage_error(run_cli_in_process("bench", trained_generator, "--batches", "1,x"), "--batches")
    assert_usage_error(run_cli_in_process("bench", tmp_path / "nothing"), "no such file or folder")
    assert_usage_error(run_cli_in_process("bench", tmp_path / "nothing", "--profile", tmp_path / "p" / "q"),
                       "no such file or folder")
    assert not (tmp_path / "p").exists()  # --profile's folder was made before the model was refused
    assert_usage_error(run_cli_in_process("bench", tmp_path), "no generator.keras")
    # refused before the bench runs (a traceback after it, a hang, or invalid JSON before):
    (tmp_path / "list.json").write_text("[1, 2]")
    for args, fragment in ((("--json", tmp_path), "is a folder"), (("--markdown", tmp_path), "is a folder"),
                           (("--compare", tmp_path / "list.json"), "not a runegen bench --json"),
                           (("--min-seconds", "inf"), "finite number > 0"), (("--min-seconds", "nan"), "finite number > 0"),
                           (("--quality-samples", "100001"), "--quality-samples"),
                           (("--profile", tmp_path / "list.json" / "profiles"), "--profile")):
        assert_usage_error(run_cli_in_process("bench", trained_generator, *args), fragment)
    # a report over a model or its metadata (`--json m/generator_f32.onnx` replaced the model just
    # benched), or two reports in one file (the JSON was lost): refused before the bench runs
    export = exported[0]
    for args, fragment in ((("--json", export / "generator_f32.onnx"), "the name of a model or of its metadata"),
                           (("--markdown", export / "generator_int8.tflite.json"), "the name of a model"),
                           (("--json", tmp_path / "r.json", "--markdown", tmp_path / "r.json"), "also given to --json")):
        assert_usage_error(run_cli_in_process("bench", trained_generator, *args), fragment)
    assert_usage_error(run_cli_in_process("evaluate", trained_generator, "--json", trained_generator.parent / "config.json"),
                       "the name of a model or of its metadata")
    # refused before any row runs: a batch of 10^10 ran every row into a MemoryError (exit 1)
    for args, fragment in ((("--batches", "10000000000"), "<= 65536"), (("--batches", "1,65537"), "--batches 1,65537"),
                           (("--device", " "), "--device: empty")):
        assert_usage_error(run_cli_in_process("bench", SHIPPED, *args), fragment)
    assert_usage_error(run_cli_in_process("bench", ""), "MODEL: '': an empty path")  # was ".: no generator.keras"


def test_one_file_that_is_no_model_is_bad_input(tmp_path):
    """MODEL given as one exported file that does not load is refused in one line, exit 2, before
    any row runs (it was a table of ❌ rows, exit 1, as for a folder with one bad file among good ones)."""
    (tmp_path / "garbage.onnx").write_bytes(b"not a model at all")
    (tmp_path / "garbage.tflite").write_bytes(b"\x00" * 64)
    (tmp_path / "digits.onnx").write_bytes((SHIPPED.parent / "classifier_runes.onnx").read_bytes())
    for name, fragment in (("garbage.onnx", "is not a valid ONNX model"), ("garbage.tflite", "is not a valid TFLite model"),
                           ("digits.onnx", "is not a runegen generator")):
        assert_usage_error(run_cli_in_process("bench", tmp_path / name, "--threads", "1"), fragment)


def test_a_keras_file_without_tensorflow_says_what_to_install(tmp_path):
    """On the edge install `bench MODEL.keras` (or a run folder with no exports) said "its .keras
    file needs TensorFlow, and no exported files", without how to get TensorFlow."""
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "generator.keras").write_bytes(b"")
    for model in ("run/generator.keras", "run"):
        result = run_cli_without_tensorflow("bench", model, "--threads", "1", cwd=tmp_path)
        assert_usage_error(result, "needs TensorFlow: pip install 'runegen[train]'")


def test_bench_and_generate_read_device_names_alike(monkeypatch, tmp_path):
    """generate took `CPU` (and printed it so) where bench refused it; the lists of what is
    available differed: bench left out onnxruntime's providers that runegen has no name for,
    generate put them among runegen's names unsaid."""
    import onnxruntime

    from runegen.bench.plan import resolve_devices

    assert resolve_devices("CPU") == resolve_devices(" CPUExecutionProvider") == resolve_devices("ALL") == ["cpu"]
    onnx_file = SHIPPED / "generator_f32.onnx"
    drawn = run_cli_in_process("generate", onnx_file, "--device", "CPU", "-n", "1", "--out", tmp_path / "a.png")
    assert drawn.returncode == 0 and drawn.stdout.rstrip().endswith(", cpu)"), drawn.stdout + drawn.stderr
    # a .tflite file too (bench took CPUExecutionProvider for its rows, generate refused it)
    tflite = run_cli_in_process("generate", SHIPPED / "generator_int8.tflite", "--device", "CPUExecutionProvider",
                                "-n", "1", "--out", tmp_path / "t.png")
    assert tflite.returncode == 0 and tflite.stdout.rstrip().endswith(", cpu)"), tflite.stdout + tflite.stderr
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["AzureExecutionProvider", "CPUExecutionProvider"])
    assert resolve_devices("azureexecutionprovider") == ["AzureExecutionProvider"] and resolve_devices("all") == ["cpu"]
    for command in (("bench", SHIPPED), ("generate", onnx_file, "--out", tmp_path / "b.png")):
        assert_usage_error(run_cli_in_process(*command, "--device", "GPU"),
                           "(available: cpu; onnxruntime providers without a short name: AzureExecutionProvider)")


def test_names_with_brackets_are_printed_as_they_are(exported, tmp_path):
    """rich read "[bold]" in a file name as markup (the name printed without it), and a folder
    "b[/red]" ended the bench with a MarkupError before its --json was written. A shipped
    classifier (classifier_runes.onnx) lying beside the models is no generator: left out."""
    folder = tmp_path / "b[" / "red]"
    folder.mkdir(parents=True)
    (folder / "bad[bold].onnx").write_bytes(b"not onnx")  # its row fails, and its error names the folder
    shutil.copy(exported[0] / "generator_int8.tflite", folder)
    shutil.copy(exported[0] / "generator_int8.tflite.json", folder)
    shutil.copy(ROOT / "runegen" / "models" / "classifier_runes.onnx", folder)
    quick = ("--threads", "1", "--batches", "1", "--min-seconds", "0.01", "--runs", "2", "--quality-samples", "0")
    result = run_cli_without_tensorflow("bench", folder, *quick, "--json", folder / "r.json", "--accept-failures",
                                        cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "│ bad[bold] " in result.stdout and f"{folder}/bad[bold].onnx is not a valid ONNX model" in result.stdout
    assert "classifier" not in result.stdout
    rows = json.loads((folder / "r.json").read_text())["rows"]
    assert sorted(row["variant"] for row in rows) == ["bad[bold]", "int8", "int8"]


def test_when_the_reference_fails_the_next_file_is_the_reference(exported, tmp_path):
    """A broken f32 ONNX file (the reference without Keras) made every other row ❌ with a missing
    reference.npy; now it alone fails and the next file that runs is the reference."""
    for name in ("generator_int8.tflite", "generator_int8.tflite.json", "generator_f32.tflite",
                 "generator_f32.tflite.json"):
        shutil.copy(exported[0] / name, tmp_path)
    (tmp_path / "generator_f32.onnx").write_bytes(b"not onnx")
    report_path = tmp_path / "bench.json"
    quick = ("--threads", "1", "--batches", "1", "--min-seconds", "0.01", "--runs", "2", "--quality-samples", "0")
    result = run_cli_without_tensorflow("bench", tmp_path, *quick, "--json", report_path, cwd=tmp_path)
    assert result.returncode == 1 and "1 of 5 rows failed" in result.stderr, result.stderr
    report = json.loads(report_path.read_text())
    assert report["reference"] == "tflite f32"  # lossless: an int8 reference would fail every f32 file
    assert set(statuses(report).values()) == {"❌", "✅"} and statuses(report)[("onnx", "f32", "onnxruntime")] == "❌"
    assert [r["variant"] for r in report["rows"]] == ["f32", "f32", "f32", "int8", "int8"]  # the table's order kept
    assert "MFLOP per image" in result.stdout  # read from the TFLite files' metadata
    # an int8 file alone: no lossless reference, so its parity is not measured (it was "0, inf dB")
    alone = run_cli_without_tensorflow("bench", tmp_path / "generator_int8.tflite", *quick, "--json", report_path,
                                       cwd=tmp_path)
    assert alone.returncode == 0, alone.stderr
    assert json.loads(report_path.read_text())["reference"] is None and "parity reference: none" in alone.stdout


def test_a_row_scores_its_images_with_codes_drawn_by_the_prior():
    """The shipped runes-s1 never draws the codes its prior leaves empty (blurred blobs); a row's
    quality must draw codes the same way, as `runegen evaluate` does (0.914 on the shipped file),
    not uniformly (0.48 on aarch64 and x86 alike before the fix)."""
    from runegen.bench.worker import quality
    from runegen.quality.classifier import SHIPPED_CLASSIFIER
    from runegen.runtime import load_generator
    from runegen.runtime.generator import SHIPPED_DIR

    generator = load_generator(SHIPPED_DIR / "runes-s1" / "generator_f32.onnx", threads=1)
    assert generator.code_weights is not None and (generator.code_weights == 0).any()
    spec = {"classifier": str(SHIPPED_CLASSIFIER.with_suffix(".onnx")), "threads": 1,
            "quality_samples": 500}
    assert quality(generator.generate, generator, spec)["recognisability"] > 0.85


@pytest.mark.slow
def test_the_table_written_to_a_file_keeps_every_figure(bench_run, capsys):
    """Out of a terminal (a file, a pipe, CI's log) the table takes its natural width: no figure
    is cut to '2,0…'. Eight batch sizes make it wider than any terminal default."""
    import copy

    from runegen.bench.report import print_table
    from runegen.commands.options import table_console

    report = copy.deepcopy(bench_run[0])
    report["settings"]["batches"] = [1, 2, 4, 8, 16, 32, 64, 128]
    for row in report["rows"]:
        if row["figures"].get("throughput"):
            row["figures"]["throughput"] = {str(b): 12_345.6 for b in report["settings"]["batches"]}
    print_table(report, table_console())
    shown = capsys.readouterr().out
    assert "…" not in shown and shown.count("12,346") == 8 * (len(report["rows"]) - 1)  # the ❌ row has none


def test_a_model_folder_is_benched_as_it_is(tmp_path):
    """The shipped layout (exports beside generator.keras) is benched as it stands, on the edge
    install too; nothing is exported into it, where a run folder gets its missing variants in
    export/."""
    from runegen.bench.sources import exports_missing_variants, locate

    shipped = ROOT / "runegen" / "models" / "runes-s1"
    assert locate(shipped) == (shipped / "generator.keras", shipped)
    assert not exports_missing_variants(*locate(shipped))
    run = tmp_path / "run"
    run.mkdir()
    (run / "generator.keras").write_bytes(b"")
    assert locate(run) == (run / "generator.keras", run / "export") and exports_missing_variants(*locate(run))
    # Its .keras file given: benched as the folder is, where it was exported into the model folder.
    assert locate(shipped / "generator.keras") == (shipped / "generator.keras", shipped)
    (run / "export").write_bytes(b"")  # was a FileExistsError traceback from the export's mkdir
    for given in (run, run / "generator.keras"):
        with pytest.raises(ModelFileError, match="export is a file, where bench finds and writes"):
            locate(given)
    beside = tmp_path / "beside"  # another model's export beside it makes no model folder of it
    beside.mkdir()
    (beside / "mine.keras").write_bytes(b"")
    (beside / "theirs_f32.onnx").write_bytes(b"x")
    assert locate(beside / "mine.keras") == (beside / "mine.keras", beside / "export")

    report_path = tmp_path / "bench.json"
    result = run_cli_without_tensorflow("bench", shipped, *QUICK, "--json", report_path, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(report_path.read_text())
    assert report["reference"] == "onnx f32"
    assert sorted((r["format"], r["variant"], r["runtime"]) for r in report["rows"]) == [
        ("onnx", "f32", "onnxruntime"), ("tflite", "int8", "LiteRT"), ("tflite", "int8", "LiteRT+XNNPACK")]


def test_what_a_bench_could_not_do_is_noted(exported, tmp_path):
    """Without onnxruntime (32-bit Pi OS) the recognisability column was '-' with no word why, and a
    .tflite copied without its sidecar was benched with all-Gaussian latents as if described."""
    shutil.copy(exported[0] / "generator_int8.tflite", tmp_path)
    quick = ("--threads", "1", "--batches", "1", "--min-seconds", "0.01", "--runs", "2", "--quality-samples", "10")
    result = run_cli_without_tensorflow("bench", tmp_path / "generator_int8.tflite", *quick, cwd=tmp_path,
                                        also_blocked=("onnxruntime",))
    assert result.returncode == 0, result.stderr
    shown = " ".join(result.stdout.split())  # the summary lines as printed, unwrapped
    assert "note: recognisability not measured: the rune classifier runs on onnxruntime" in shown
    assert "generator_int8.tflite came without runegen's metadata (generator_int8.tflite.json beside it)" in shown


def test_missing_variants_are_exported_before_the_bench_or_refused_before_any_work(trained_generator, exported,
                                                                                   tmp_path):
    """A run folder where nothing can be written (read-only: a PermissionError traceback from the
    export's mkdir; checked here with an export/ link to a missing folder, which fails the same
    way as root) is one line before any conversion; the variants added leave the folder's parity
    pictures, export's of every variant, as they were (bench replaced them with pictures of the
    one or two variants it added)."""
    from runegen.bench.sources import export_missing

    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(trained_generator, run)
    (run / "export").symlink_to(tmp_path / "gone")
    assert_usage_error(run_cli_in_process("bench", run, *QUICK), "cannot write the 8 missing export(s) there")
    (run / "export").unlink()
    shutil.copytree(exported[0], run / "export")
    (run / "export" / "generator_f16.onnx").unlink()
    pictures = {p.name: p.read_bytes() for p in (run / "export").glob("*_parity_*.png")}
    assert sorted(pictures) == ["generator_parity_onnx.png", "generator_parity_tflite.png"]
    assert export_missing(run / "generator.keras", run / "export") == []
    assert (run / "export" / "generator_f16.onnx").is_file()
    assert {p.name: p.read_bytes() for p in (run / "export").glob("*_parity_*.png")} == pictures
