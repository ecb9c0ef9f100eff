"""eg_fully_connected_s8 against the golden model, byte for byte."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgegen.ir import Rounding
from edgegen.reference import kernels
from edgegen.reference.numerics import fold_zero_point

from .support import FILLS, random_bias, random_int8, random_requant, random_weights

DETERMINISTIC = settings(derandomize=True, database=None, deadline=None, max_examples=300)


def run_case(ck, seed, features, outputs, rounding, regime="realistic", fill="uniform",
             zp=None, batch=3):
    rng = np.random.default_rng(seed)
    x = random_int8(rng, (batch, features), fill)
    weight = random_weights(rng, (outputs, features), rng.choice(FILLS))
    bias = random_bias(rng, outputs, features)
    if zp is None:
        zp = int(rng.choice([-128, 127, 0, int(rng.integers(-128, 128))]))
    requant = random_requant(rng, outputs, features, rounding, regime)
    expected = kernels.fully_connected(x, weight, bias, zp, requant)
    folded = fold_zero_point(weight, bias, zp)
    got = ck.fully_connected(x, weight, folded, requant)
    np.testing.assert_array_equal(got, expected)


@DETERMINISTIC
@given(
    seed=st.integers(0, 2**32 - 1),
    features=st.one_of(st.integers(1, 40), st.sampled_from([256, 400, 1000])),
    outputs=st.integers(1, 12),
    rounding=st.sampled_from(Rounding),
    regime=st.sampled_from(["realistic", "realistic", "wild"]),
    fill=st.sampled_from(FILLS),
)
def test_fully_connected_matches_golden(ck, seed, features, outputs, rounding, regime, fill):
    run_case(ck, seed, features, outputs, rounding, regime, fill)


@pytest.mark.parametrize("rounding", list(Rounding))
@pytest.mark.parametrize("zp", [-128, 127, 0])
@pytest.mark.parametrize("fill", ["extremes", "constant"])
def test_fully_connected_extremes(ck, rounding, zp, fill):
    for seed in range(4):
        run_case(ck, seed, 64, 10, rounding, regime="wild", fill=fill, zp=zp)
        run_case(ck, seed, 64, 10, rounding, regime="realistic", fill=fill, zp=zp)


@pytest.mark.parametrize("zp", [-128, -37, 52])
def test_fully_connected_folded_bias_is_what_c_takes(ck, zp):
    """The C kernel multiplies raw inputs, so it needs the bias with the input
    zero point folded in (bias - zp * row sums of the weights): with it, it
    equals the golden model; with the true (unfolded) bias it does not."""
    rng = np.random.default_rng(11)
    x = random_int8(rng, (4, 20))
    weight = random_weights(rng, (6, 20))
    bias = random_bias(rng, 6, 20)
    requant = random_requant(rng, 6, 20, Rounding.DOUBLE)
    expected = kernels.fully_connected(x, weight, bias, zp, requant)

    row_sums = weight.astype(np.int64).sum(axis=1)
    assert np.all(row_sums != 0), "a zero row sum would make folding a no-op for that row"
    folded = (bias.astype(np.int64) - zp * row_sums).astype(np.int32)  # by hand, not via the code
    np.testing.assert_array_equal(fold_zero_point(weight, bias, zp), folded)
    np.testing.assert_array_equal(ck.fully_connected(x, weight, folded, requant), expected)

    unfolded = ck.fully_connected(x, weight, bias, requant)
    assert not np.array_equal(unfolded, expected), "the unfolded bias must give wrong outputs"
