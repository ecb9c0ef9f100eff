"""A zoo network through the whole of edgegen compress on a board: ShuffleNet
(grouped 1x1s, channel shuffles, depthwise 3x3s, residual adds and a
concatenation with an average-pooled shortcut) filter-pruned, magnitude-
pruned and weight-shared, its int8 graph bit-exact under QEMU on the M4F in
the formats the cost model picks for size. Random weights: compress runs
without retraining (the arithmetic, not the accuracy, is under test)."""

import torch
import torch.nn as nn

from edgegen.compress.pipeline import compress
from edgegen.compress.spec import CompressSpec, FilterPruneSpec, LayerSpec, PruneSpec, ShareSpec
from edgegen.encode.storage_plan import FormatRequest
from edgegen.firmware.boards import load_board
from edgegen.jobs.board_verify import verify_on_board
from edgegen.jobs.lower import StorageChoice, lower
from edgegen.jobs.quantize import QuantizeOptions, quantize_model
from edgegen.quantize.quantize import WeightGrid
from edgegen.zoo.models import shufflenet
from firmware_helpers import board_vectors, check_verified_run, require_board_tools


def _spec(model: nn.Module) -> CompressSpec:
    """Every prunable layer loses a quarter of the parameters' filters; every
    weight layer is pruned to 60 %; the classifier (no BatchNorm after it)
    is shared on 5 bits."""
    layers = []
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            share = ShareSpec(bits=5) if isinstance(module, nn.Linear) else None
            layers.append((name, LayerSpec(prune=PruneSpec(sparsity=0.6), share=share)))
    return CompressSpec(tuple(layers), filters=FilterPruneSpec(params=0.25))


def test_a_filter_pruned_and_compressed_shufflenet_is_bit_exact_on_the_m4f(fashion, tmp_path):
    board = load_board("qemu-mps2-an386")
    require_board_tools(board, emulate=True)
    torch.manual_seed(0)
    model = shufflenet().eval()
    before = sum(p.numel() for p in model.parameters())
    result = compress(model, _spec(model), train_fn=lambda m, epochs: None,
                      eval_fn=lambda m: 0.0, progress=False, log=lambda *_: None,
                      example_input=torch.zeros(1, 1, 28, 28))
    assert sum(p.numel() for p in result.model.parameters()) < 0.8 * before
    grids = {layer.name: WeightGrid(layer.scale, layer.codebook_q)
             for layer in result.layers if layer.codebook_q is not None}
    assert grids  # the classifier is shared
    qgraph = quantize_model(result.model, "shufflenet", fashion, QuantizeOptions(calib_samples=50),
                            grids)
    vectors = board_vectors(qgraph, fashion, 4, 4)
    choice = StorageChoice(FormatRequest.parse("auto"), "size")
    formats = set(lower(qgraph, choice).storage.formats().values())
    assert formats - {"dense"}, formats  # compressed formats, not only dense
    run = verify_on_board(qgraph, board, vectors, tmp_path, storage=choice)
    check_verified_run(run, board, qgraph, vectors)
