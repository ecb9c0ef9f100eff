"""The size limits of the import stage: counted exactly, refused with numbers."""

import pytest
import torch
from torch import nn

from edgegen.errors import UserError
from edgegen.frontend.limits import check_graph_size, check_module_size, constant_bytes
from edgegen.frontend.torch_import import import_model


def small_graph():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 26 * 26, 10))
    return import_model(model.eval(), torch.zeros(1, 1, 28, 28), "small")


def test_constant_bytes_counts_int8_weights_and_per_channel_int32_constants():
    # conv: 4*9 weights + 4 channels * (bias + multiplier + shift); fc: 2704*10 + 10 * 12
    assert constant_bytes(small_graph()) == 36 + 4 * 12 + 27040 + 10 * 12


def test_check_graph_size_names_the_size_and_the_limit():
    graph = small_graph()
    check_graph_size(graph, constant_bytes(graph))
    with pytest.raises(UserError, match="27,244 bytes of int8 weights.*limit of 27,243 bytes.*--max-model-bytes"):
        check_graph_size(graph, constant_bytes(graph) - 1)


def test_check_graph_size_refuses_a_huge_activation():
    model = nn.Sequential(nn.Conv2d(1, 1, 1), nn.ReLU())  # 13 bytes of constants
    graph = import_model(model.eval(), torch.zeros(1, 1, 28, 28), "wide")
    with pytest.raises(UserError, match="activation of 784 int8 values, over the limit of 500"):
        check_graph_size(graph, 500)


def test_check_module_size_counts_parameters_before_any_weights_are_loaded():
    model = nn.Linear(100, 10)
    check_module_size(model, "lin", 1010)
    with pytest.raises(UserError, match="lin has 1,010 parameters, over the limit of 1,009"):
        check_module_size(model, "lin", 1009)
