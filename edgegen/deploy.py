"""The main job: a float model to a verified C folder, one stage after another.

import -> quantize -> plan -> emit -> host build -> verify -> report. Each
stage is a call into its own module; this file only sequences them, picks
the samples and writes the folder (atomically, see ``output_folder``).
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from edgegen.build.host import compile_executable
from edgegen.data.datasets import Dataset, image_to_int8, images_to_tensor
from edgegen.emit.generate import GeneratedSources, generate_sources
from edgegen.emit.c_format import c_prefix
from edgegen.errors import UserError
from edgegen.frontend.limits import DEFAULT_MAX_MODEL_BYTES, check_graph_size
from edgegen.frontend.torch_import import import_model
from edgegen.ir import QGraph, Rounding
from edgegen.output_folder import atomic_folder
from edgegen.plan.arena import MemoryPlan, plan_memory
from edgegen.quantize.artifact import load_qgraph, save_qgraph
from edgegen.quantize.calibrate import CalibrationSpec
from edgegen.quantize.quantize import quantize
from edgegen.quantize.validate import validate_qgraph
from edgegen.reference.float_model import nchw_to_nhwc
from edgegen.reference.golden import run_golden
from edgegen.report.compression import storage_table
from edgegen.report.layers import layer_rows
from edgegen.report.render import write_report
from edgegen.report.sizes import symbol_sizes
from edgegen.verify.compare import Comparison, compare_outputs
from edgegen.verify.host_model import HostModel, ModelSizes

QGRAPH_FILE = "model.qgraph.npz"
REPORT_JSON = "report.json"
IMAGE_INPUT_RANGE = (0.0, 1.0)  # images are pixel / 255: int8 input = pixel - 128


@dataclass(frozen=True)
class QuantizeOptions:
    calibration: CalibrationSpec = CalibrationSpec(input_range=IMAGE_INPUT_RANGE)
    calib_samples: int = 1000
    rounding: Rounding = Rounding.DOUBLE
    seed: int = 0
    max_model_bytes: int = DEFAULT_MAX_MODEL_BYTES  # see edgegen.frontend.limits


@dataclass(frozen=True)
class VerifyOptions:
    test_samples: int | None = 1000  # None: the whole test set
    random_samples: int = 100
    seed: int = 0
    cc: str | None = None


@dataclass
class VerifyResult:
    test_vectors: int
    random_vectors: int
    comparison: Comparison
    golden_accuracy: float
    c_accuracy: float
    seconds: float
    float_accuracy: float | None = None  # on the same test images
    float_accuracy_full: float | None = None  # on the whole test set
    board: object = None  # edgegen.target.BoardVerifyResult when run on an emulated board


def model_input_shape(dataset: Dataset) -> tuple[int, ...]:
    return (1, 1) + tuple(dataset.test_images.shape[1:])


def dataset_inputs(images: np.ndarray) -> np.ndarray:
    """uint8 images (N, H, W) -> the float NHWC batch the graphs take."""
    return nchw_to_nhwc(images_to_tensor(images).numpy())


def float_accuracy(model: nn.Module, dataset: Dataset, limit: int | None = None) -> float:
    images = dataset.test_images[:limit]
    labels = dataset.test_labels[:limit]
    correct = 0
    model.eval()
    with torch.no_grad():
        for start in range(0, len(images), 1000):
            x = images_to_tensor(images[start : start + 1000])
            pred = model(x).argmax(dim=1).numpy()
            correct += int((pred == labels[start : start + 1000]).sum())
    return correct / len(images)


def quantize_model(model: nn.Module, name: str, dataset: Dataset, options: QuantizeOptions,
                   weight_scales: dict[str, float] | None = None) -> QGraph:
    """Import and quantize; ``weight_scales`` fix the int8 grid of layers
    compressed with shared weights (see ``quantize.quantize``)."""
    graph = import_model(model, torch.zeros(model_input_shape(dataset)), name)
    check_graph_size(graph, options.max_model_bytes)
    rng = np.random.default_rng(options.seed)
    count = min(options.calib_samples, len(dataset.train_images))
    pick = np.sort(rng.choice(len(dataset.train_images), size=count, replace=False))
    samples = dataset_inputs(dataset.train_images[pick])
    qgraph = quantize(graph, samples, options.calibration, options.rounding, weight_scales)
    qgraph.metadata.update({"dataset": dataset.name, "calibration_seed": options.seed})
    try:  # what is saved must load again: the same checks as model.qgraph.npz gets
        validate_qgraph(qgraph)
    except ValueError as exc:
        raise UserError(f"model {name} cannot be deployed: {exc}") from None
    return qgraph


def model_sizes(qgraph: QGraph, plan: MemoryPlan) -> ModelSizes:
    """The generated API's sizes, as the quantized graph determines them."""
    return ModelSizes(c_prefix(qgraph.name), qgraph.tensor(qgraph.input).size,
                      qgraph.tensor(qgraph.output).size, plan.arena_size)


def emit(qgraph: QGraph, folder: Path) -> tuple[GeneratedSources, MemoryPlan]:
    plan = plan_memory(qgraph)
    sources = generate_sources(qgraph, plan)
    sources.write(folder)
    save_qgraph(qgraph, folder / QGRAPH_FILE)
    return sources, plan


def verify_on_host(qgraph: QGraph, model: HostModel, dataset: Dataset, options: VerifyOptions) -> VerifyResult:
    """Golden model vs C on test images and random int8 vectors."""
    start = time.perf_counter()
    images = dataset.test_images[: options.test_samples]
    labels = dataset.test_labels[: options.test_samples]
    test_in = image_to_int8(images).reshape((len(images),) + qgraph.tensor(qgraph.input).shape)
    rng = np.random.default_rng(options.seed)
    random_in = rng.integers(-128, 128, size=(options.random_samples,) + test_in.shape[1:],
                             dtype=np.int64).astype(np.int8)
    vectors = np.concatenate([test_in, random_in])
    golden = run_golden(qgraph, vectors).reshape(len(vectors), -1)
    c_out = model.run(vectors)
    comparison = compare_outputs(golden, c_out)
    n = len(images)
    return VerifyResult(
        test_vectors=n,
        random_vectors=options.random_samples,
        comparison=comparison,
        golden_accuracy=float((golden[:n].argmax(axis=1) == labels).mean()),
        c_accuracy=float((c_out[:n].argmax(axis=1) == labels).mean()),
        seconds=time.perf_counter() - start,
    )


def measure_weight_bytes(sources: GeneratedSources, folder: Path, cc: str | None) -> dict[str, int]:
    """Bytes of const data per layer, from the compiled weights object."""
    obj = compile_executable(
        [folder / f"{sources.prefix}_weights.c"], [folder], folder / "build" / "weights.o",
        cc=cc, opt="-Os", extra_flags=("-c",),
    )
    sizes = symbol_sizes(obj)
    per_layer: dict[str, int] = {}
    for array in sources.arrays:
        if array.symbol not in sizes:
            raise RuntimeError(f"{array.symbol} missing from {obj}")
        per_layer[array.layer] = per_layer.get(array.layer, 0) + sizes[array.symbol]
    return per_layer


def deploy(model: nn.Module, name: str, dataset: Dataset, out: Path, *,
           quantize_options: QuantizeOptions = QuantizeOptions(),
           verify_options: VerifyOptions = VerifyOptions(),
           force: bool = False, source: dict | None = None,
           weight_scales: dict[str, float] | None = None, board: str | None = None,
           inputs: tuple[Path, ...] = (), log=print) -> VerifyResult:
    """import -> quantize -> plan -> emit -> build -> verify -> report into ``out``;
    with ``board``, also the firmware in ``out/firmware-<board>``, verified
    under QEMU when the board is emulated. ``out`` may not hold ``inputs``
    (the files the model came from); ``force`` replaces only a folder that
    edgegen wrote (see ``output_folder``)."""
    t0 = time.perf_counter()
    with atomic_folder(out, force, inputs) as folder:
        qgraph = quantize_model(model, name, dataset, quantize_options, weight_scales)
        log(f"quantized {name}: {len(qgraph.nodes)} layers, {qgraph.rounding.value} rounding, "
            f"{quantize_options.calib_samples} calibration samples")
        sources, plan = emit(qgraph, folder)
        host = HostModel(folder, model_sizes(qgraph, plan), folder / "build", cc=verify_options.cc)
        weight_bytes = measure_weight_bytes(sources, folder, verify_options.cc)
        result = verify_on_host(qgraph, host, dataset, verify_options)
        result.float_accuracy = float_accuracy(model, dataset, verify_options.test_samples)
        result.float_accuracy_full = float_accuracy(model, dataset)
        if board is not None:
            result.board = deploy_to_board(qgraph, board, dataset, folder, verify_options, log)
        rows = layer_rows(qgraph, plan, weight_bytes)
        write_report(folder, name=name, prefix=sources.prefix, qgraph=qgraph, plan=plan,
                     rows=rows, result=result, source=source or {}, dataset=dataset,
                     storage=storage_table(qgraph), seconds=time.perf_counter() - t0)
    return result


def board_vectors(qgraph: QGraph, dataset: Dataset, options: VerifyOptions) -> np.ndarray:
    from edgegen.target import verification_vectors

    return verification_vectors(qgraph, dataset.test_images[: options.test_samples],
                                options.random_samples, options.seed)


SELFTEST_IMAGES = 4  # golden vectors embedded in a firmware's self-test


def firmware_for_board(qgraph: QGraph, board, dataset: Dataset, out: Path, *, force: bool = False,
                       inputs: tuple[Path, ...] = ()):
    """A firmware folder for ``board``, its self-test carrying the golden
    outputs of the first test images."""
    from edgegen.target import build_firmware

    return build_firmware(qgraph, board, out, force=force, inputs=inputs,
                          vectors=board_vectors(qgraph, dataset, VerifyOptions(SELFTEST_IMAGES, 0)),
                          vectors_provenance=f"the first {SELFTEST_IMAGES} test-set images")


def deploy_to_board(qgraph: QGraph, board: str, dataset: Dataset, folder: Path,
                    options: VerifyOptions, log=print):
    """Firmware for ``board`` in ``folder/firmware-<board>``; on an emulated
    board, run it under QEMU on the verification vectors."""
    from edgegen.target import load_board, verify_firmware

    spec = load_board(board)
    build = firmware_for_board(qgraph, spec, dataset, folder / f"firmware-{spec.name}")
    for line in build.summary_lines():
        log(line)
    if not spec.emulated:
        return None
    with tempfile.TemporaryDirectory(prefix="edgegen-qemu-") as work:
        return verify_firmware(build, qgraph, board_vectors(qgraph, dataset, options), Path(work))


def reverify(folder: Path, dataset: Dataset, options: VerifyOptions) -> VerifyResult:
    """Rebuild a deploy folder's C and check it against its saved QGraph.

    The folder is only read: sizes come from the QGraph (the header must
    agree with them), the build happens in a temporary folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder: pass the --out folder of `edgegen deploy`")
    qgraph = load_qgraph(folder / QGRAPH_FILE)
    sizes = model_sizes(qgraph, plan_memory(qgraph))
    with tempfile.TemporaryDirectory(prefix="edgegen-verify-") as build:
        host = HostModel(folder, sizes, Path(build), cc=options.cc)
        result = verify_on_host(qgraph, host, dataset, options)
    saved = saved_report(folder)
    result.float_accuracy_full = saved.float_accuracy_full
    if result.test_vectors == len(dataset.test_images):
        result.float_accuracy = result.float_accuracy_full
    return result


@dataclass(frozen=True)
class SavedReport:
    """What ``verify`` reuses of a deploy folder's report.json (all optional:
    the file is the user's to lose or edit)."""

    present: bool
    data_dir: Path | None
    float_accuracy_full: float | None


def saved_report(folder: Path) -> SavedReport:
    """The dataset folder and float accuracy recorded by deploy; a report
    that is absent or lacks them gives None, one that is damaged a UserError."""
    path = Path(folder) / REPORT_JSON
    if not path.is_file():
        return SavedReport(False, None, None)
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{path} is not readable JSON ({exc}): pass --data-dir, or redeploy") from None
    if not isinstance(report, dict):
        raise UserError(f"{path} is not a deploy report (not a JSON object): pass --data-dir, "
                        "or redeploy")
    dataset = report.get("dataset")
    directory = dataset.get("directory") if isinstance(dataset, dict) else None
    accuracy = report.get("accuracy")
    full = accuracy.get("float_full_test_set") if isinstance(accuracy, dict) else None
    return SavedReport(
        True, Path(directory) if isinstance(directory, str) and directory else None,
        float(full) if isinstance(full, (int, float)) and not isinstance(full, bool)
        and 0.0 <= full <= 1.0 else None,
    )
