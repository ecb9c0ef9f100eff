"""An MLPerf Tiny network on an emulated board: keyword spotting's DS-CNN
(a non-square 10x4 stride-2 convolution on a 49x10 one-channel input,
depthwise-separable blocks, a 24x5 average pool, softmax), random weights
and synthetic inputs, dense int8 and compressed, bit-exact under QEMU on the
Cortex-M4F with per-layer instruction counts."""

import pytest

from edgegen.data.datasets import synthetic_dataset
from edgegen.firmware.boards import load_board
from edgegen.firmware.vectors import verification_vectors
from edgegen.jobs.board_verify import verify_on_board
from edgegen.jobs.lower import StorageChoice, lower
from edgegen.jobs.quantize import QuantizeOptions, int8_inputs, quantize_model
from edgegen.zoo.mlperf_tiny import INPUT_SHAPES, MLPERF_TINY, random_weights
from firmware_helpers import check_verified_run, require_board_tools
from mlperf_support import compressed_qgraph


@pytest.mark.parametrize("variant", ["int8", "compressed"])
def test_kws_dscnn_is_bit_exact_on_the_m4f(variant, tmp_path):
    board = load_board("qemu-mps2-an386")
    require_board_tools(board, emulate=True)
    if variant == "int8":
        data = synthetic_dataset(INPUT_SHAPES["kws_dscnn"], train=64, test=4)
        model = random_weights(MLPERF_TINY["kws_dscnn"](), seed=0)
        qgraph = quantize_model(model, "kws_dscnn", data, QuantizeOptions(calib_samples=64))
        choice = StorageChoice.from_options("dense", "balanced")
    else:
        _, qgraph, data = compressed_qgraph("kws_dscnn")
        choice = StorageChoice.from_options("auto", "size")
        assert set(lower(qgraph, choice).storage.formats().values()) - {"dense"}
    vectors = verification_vectors(qgraph, int8_inputs(qgraph, data, data.test_inputs[:4]), 4)
    run = verify_on_board(qgraph, board, vectors, tmp_path, storage=choice)
    check_verified_run(run, board, qgraph, vectors)
    assert set(dict(run.instructions.per_layer)) >= {"conv1", "blocks.3.pointwise", "pool", "softmax"}
