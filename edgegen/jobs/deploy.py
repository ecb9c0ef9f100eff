"""The deploy job: a float model to a verified C folder, one stage after another.

import -> quantize -> plan -> emit -> host build -> verify -> report. Each
stage is a call into its own module; this file only sequences them, picks
the samples and writes the folder (atomically, see ``output_folder``). With a
board, the firmware build and board verify jobs follow.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch.nn as nn

from edgegen.data.datasets import Dataset
from edgegen.errors import UserError
from edgegen.firmware.boards import Board, load_board
from edgegen.firmware.built import FirmwareBuild
from edgegen.firmware.vectors import verification_vectors
from edgegen.ir import QGraph
from edgegen.jobs.board_verify import BoardVerifyResult, verify_firmware
from edgegen.jobs.firmware_build import FirmwareOptions, build_firmware
from edgegen.jobs.lower import STORAGE_FILE, Lowered, StorageChoice, load_choice, lower, save_choice
from edgegen.jobs.quantize import QuantizeOptions, int8_inputs, quantize_model
from edgegen.output_folder import atomic_folder
from edgegen.quantize.artifact import load_qgraph, save_qgraph
from edgegen.reference.golden import run_golden
from edgegen.report.compression import storage_table
from edgegen.report.layers import layer_rows
from edgegen.report.render import saved_report, write_report
from edgegen.report.sizes import weight_bytes_per_layer
from edgegen.verify.compare import Comparison, compare_outputs, top1
from edgegen.verify.host_model import HostModel, ModelSizes
from edgegen.zoo.train import evaluate

QGRAPH_FILE = "model.qgraph.npz"


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
    golden_accuracy: float | None  # None: the data has no labels
    c_accuracy: float | None
    seconds: float
    float_accuracy: float | None = None  # on the same test inputs
    float_accuracy_full: float | None = None  # on the whole test set
    board: BoardVerifyResult | None = None  # when run on an emulated board


def emit(qgraph: QGraph, folder: Path, storage: StorageChoice = StorageChoice()) -> Lowered:
    """The model's C in ``folder``, with the QGraph and the storage choice
    it was lowered with (what ``reverify`` plans from)."""
    lowered = lower(qgraph, storage)
    lowered.sources.write(folder)
    save_qgraph(qgraph, folder / QGRAPH_FILE)
    save_choice(storage, folder / STORAGE_FILE)
    return lowered


def verify_on_host(qgraph: QGraph, model: HostModel, dataset: Dataset, options: VerifyOptions) -> VerifyResult:
    """Golden model vs C on test inputs and random int8 vectors."""
    start = time.perf_counter()
    test_in = int8_inputs(qgraph, dataset, dataset.test_inputs[: options.test_samples])
    rng = np.random.default_rng(options.seed)
    random_in = rng.integers(-128, 128, size=(options.random_samples,) + test_in.shape[1:],
                             dtype=np.int64).astype(np.int8)
    vectors = np.concatenate([test_in, random_in])
    golden = run_golden(qgraph, vectors).reshape(len(vectors), -1)
    c_out = model.run(vectors)
    comparison = compare_outputs(golden, c_out)
    n = len(test_in)
    labels = None if dataset.test_labels is None else dataset.test_labels[:n]
    return VerifyResult(
        test_vectors=n,
        random_vectors=options.random_samples,
        comparison=comparison,
        golden_accuracy=top1(golden[:n], labels),
        c_accuracy=top1(c_out[:n], labels),
        seconds=time.perf_counter() - start,
    )


def deploy(model: nn.Module, name: str, dataset: Dataset, out: Path, *,
           quantize_options: QuantizeOptions = QuantizeOptions(),
           verify_options: VerifyOptions = VerifyOptions(),
           force: bool = False, source: dict | None = None,
           weight_grids: dict | None = None, board: str | None = None,
           firmware: FirmwareOptions = FirmwareOptions(),
           storage: StorageChoice = StorageChoice(),
           inputs: tuple[Path, ...] = (), log=print) -> VerifyResult:
    """import -> quantize -> plan -> emit -> build -> verify -> report into ``out``;
    with ``board``, also the firmware in ``out/firmware-<board>`` (compiled
    as ``firmware`` says), verified under QEMU when the board is emulated.
    ``out`` may not hold ``inputs`` (the files the model came from);
    ``force`` replaces only a folder that edgegen wrote (see ``output_folder``)."""
    t0 = time.perf_counter()
    with atomic_folder(out, force, inputs) as folder:
        qgraph = quantize_model(model, name, dataset, quantize_options, weight_grids)
        log(f"quantized {name}: {len(qgraph.nodes)} layers, {qgraph.rounding.value} rounding, "
            f"{quantize_options.calib_samples} calibration samples")
        lowered = emit(qgraph, folder, storage)
        plan = lowered.memory
        host = HostModel(folder, ModelSizes.of(qgraph, plan), folder / "build", cc=verify_options.cc)
        weight_bytes = weight_bytes_per_layer(lowered.sources, folder, verify_options.cc)
        result = verify_on_host(qgraph, host, dataset, verify_options)
        result.float_accuracy = _float_accuracy(model, dataset, verify_options.test_samples)
        result.float_accuracy_full = _float_accuracy(model, dataset)
        if board is not None:
            result.board = deploy_to_board(qgraph, board, dataset, folder, verify_options, log,
                                           storage, shown_as=Path(out), firmware=firmware)
        rows = layer_rows(qgraph, plan, weight_bytes, lowered.storage)
        write_report(folder, name=name, prefix=lowered.sources.prefix, qgraph=qgraph, plan=plan,
                     rows=rows, result=result, source=source or {}, dataset=dataset,
                     storage=storage_table(qgraph), choice=storage,
                     seconds=time.perf_counter() - t0)
    return result


def _float_accuracy(model: nn.Module, dataset: Dataset, limit: int | None = None) -> float | None:
    return evaluate(model, dataset, limit=limit)


def board_vectors(qgraph: QGraph, dataset: Dataset, options: VerifyOptions) -> np.ndarray:
    """The verification vectors of ``options`` for an emulated board."""
    return verification_vectors(qgraph, int8_inputs(qgraph, dataset,
                                                     dataset.test_inputs[: options.test_samples]),
                                options.random_samples, options.seed)


SELFTEST_INPUTS = 4  # golden vectors embedded in a firmware's self-test


def firmware_for_board(qgraph: QGraph, board: Board | str, dataset: Dataset, out: Path, *,
                       force: bool = False, inputs: tuple[Path, ...] = (),
                       storage: StorageChoice = StorageChoice(),
                       firmware: FirmwareOptions = FirmwareOptions()) -> FirmwareBuild:
    """A firmware folder for ``board``, its self-test carrying the golden
    outputs of the first test inputs."""
    return build_firmware(qgraph, board, out, force=force, inputs=inputs, storage=storage,
                          opt=firmware.opt, kernels=firmware.kernels,
                          vectors=board_vectors(qgraph, dataset, VerifyOptions(SELFTEST_INPUTS, 0)),
                          vectors_provenance=f"the first {SELFTEST_INPUTS} test-set inputs")


def deploy_to_board(qgraph: QGraph, board: str, dataset: Dataset, folder: Path,
                    options: VerifyOptions, log=print,
                    storage: StorageChoice = StorageChoice(),
                    shown_as: Path | None = None,
                    firmware: FirmwareOptions = FirmwareOptions()) -> BoardVerifyResult | None:
    """Firmware for ``board`` in ``folder/firmware-<board>``; on an emulated
    board, run it under QEMU on the verification vectors. ``shown_as``: the
    name ``folder`` will have once the run commits it (what the log says)."""
    spec = load_board(board)
    build = firmware_for_board(qgraph, spec, dataset, folder / f"firmware-{spec.name}",
                               storage=storage, firmware=firmware)
    for line in build.summary_lines():
        log(line if shown_as is None else line.replace(str(Path(folder).resolve()),
                                                       str(shown_as)))
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
    lowered = lower(qgraph, load_choice(folder / STORAGE_FILE))
    sizes = ModelSizes.of(qgraph, lowered.memory)
    with tempfile.TemporaryDirectory(prefix="edgegen-verify-") as build:
        host = HostModel(folder, sizes, Path(build), cc=options.cc)
        result = verify_on_host(qgraph, host, dataset, options)
    saved = saved_report(folder)
    result.float_accuracy_full = saved.float_accuracy_full
    if result.test_vectors == len(dataset.test_inputs):
        result.float_accuracy = result.float_accuracy_full
    return result
