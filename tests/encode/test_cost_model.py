"""The cost model: exact bytes, a priced unit for every unit of work, and
choices that follow the goal."""

import pytest

from edgegen.encode.cost_model import layer_work_of, load_costs, work_units
from edgegen.encode.storage_plan import (
    FormatRequest,
    _stored_variants,
    plan_storage,
    weight_layers,
)
from edgegen.encode.storage import FORMATS, weight_matrix
from qgraph_support import compressed_like, zoo_qgraph


@pytest.fixture(scope="module")
def lenet5():
    return compressed_like(zoo_qgraph("lenet5"), density=0.08, values=31)


def test_every_unit_of_work_has_a_measured_price(lenet5):
    """A unit without a coefficient would count as free and skew every
    choice; the coefficients come from bench/kernels.py --calibrate."""
    costs = load_costs()
    assert costs["measured"] is True
    for index in weight_layers(lenet5):
        op = lenet5.nodes[index].op
        work = layer_work_of(lenet5, index)
        for stored in _stored_variants(weight_matrix(op.weight, op.codebook), FORMATS):
            missing = set(work_units(stored, work)) - set(costs[work.kind][stored.format])
            assert not missing, (work.kind, stored.format, stored.params, missing)


def test_a_fused_convolution_decodes_its_filters_once_per_band(lenet5):
    """LeNet-5's convolutions run fused with their pooling: a compressed
    kernel is called (and decodes every filter) once per band of pooled
    rows (plan.fusion.ROWS_PER_BAND), the fully connected layers once."""
    conv1, conv2, fc1 = (layer_work_of(lenet5, i) for i in weight_layers(lenet5)[:3])
    assert (conv1.pooled_rows, conv2.pooled_rows, fc1.pooled_rows) == (12, 4, 0)
    assert (conv1.calls("dense"), conv1.calls("sparse"), conv2.calls("huffman")) == (12, 6, 2)
    assert fc1.calls("sparse") == 1
    op = lenet5.nodes[weight_layers(lenet5)[0]].op
    stored = next(s for s in _stored_variants(weight_matrix(op.weight, op.codebook), ["sparse"]))
    assert work_units(stored, conv1)["per_decoded"] == 6 * stored.entries


def test_goals_order_the_choices(lenet5):
    by_goal = {goal: plan_storage(lenet5, FormatRequest(), goal) for goal in ("size", "speed")}
    for small, fast in zip(by_goal["size"].layers, by_goal["speed"].layers):
        assert small.stored.flash_bytes <= fast.stored.flash_bytes
        assert fast.instructions <= small.instructions
        # size is exact: nothing any format offers is smaller
        assert small.stored.flash_bytes == min(c.flash_bytes for c in small.candidates)
    # a sparse network is never stored dense when speed or size is the goal
    assert all(layer.format != "dense" for p in by_goal.values() for layer in p.layers)


def test_a_forced_format_is_kept_on_every_layer(lenet5):
    plan = plan_storage(lenet5, FormatRequest("codebook", {"fc1": "huffman"}), "speed")
    assert plan.formats() == {"conv1": "codebook", "conv2": "codebook", "fc1": "huffman",
                              "fc2": "codebook"}
