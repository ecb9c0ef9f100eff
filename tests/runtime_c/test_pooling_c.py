"""eg_max_pool_s8 and eg_avg_pool_s8 against the golden model, byte for byte."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgegen.reference import kernels

from .support import FILLS, random_act_range, random_int8

DETERMINISTIC = settings(derandomize=True, database=None, deadline=None, max_examples=300)

POOLS = ["max_pool", "avg_pool"]


@st.composite
def axes(draw, max_size=10, max_kernel=5):
    kernel = draw(st.integers(1, max_kernel))
    before = draw(st.integers(0, kernel - 1))
    after = draw(st.integers(0, kernel - 1))
    size = draw(st.integers(max(1, kernel - before - after), max_size))
    stride = draw(st.integers(1, 3))
    return size, kernel, stride, before, after


def run_case(ck, pool, x, kernel, stride, padding, act_min, act_max):
    expected = getattr(kernels, pool)(x, kernel, stride, padding, act_min, act_max)
    got = getattr(ck, pool)(x, kernel, stride, padding, act_min, act_max)
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)
    return got


@DETERMINISTIC
@given(
    pool=st.sampled_from(POOLS),
    seed=st.integers(0, 2**32 - 1),
    y=axes(),
    x=axes(),
    # Four-channel groups and their remainders, few and many.
    c=st.one_of(st.integers(1, 5), st.sampled_from([15, 16, 17, 32, 33])),
    fill=st.sampled_from(FILLS),
)
def test_pool_matches_golden(ck, pool, seed, y, x, c, fill):
    (h, kh, sh, top, bottom), (w, kw, sw, left, right) = y, x
    rng = np.random.default_rng(seed)
    data = random_int8(rng, (2, h, w, c), fill)
    act_min, act_max = random_act_range(rng, int(rng.integers(-128, 128)))
    run_case(ck, pool, data, (kh, kw), (sh, sw), (top, bottom, left, right), act_min, act_max)


@pytest.mark.parametrize("pool", POOLS)
@pytest.mark.parametrize(
    "shape, kernel, stride, padding",
    [
        ((8, 8, 4), (2, 2), (2, 2), (0, 0, 0, 0)),  # the classic 2x2/2
        ((7, 7, 3), (3, 3), (2, 2), (1, 1, 1, 1)),  # ResNet stem: padded corners
        ((5, 5, 20), (5, 5), (1, 1), (0, 0, 0, 0)),  # global pooling
        ((4, 6, 2), (3, 3), (1, 1), (2, 2, 2, 2)),  # windows with a single element
        ((9, 5, 17), (2, 3), (3, 1), (1, 0, 2, 1)),
    ],
)
def test_pool_geometries(ck, pool, shape, kernel, stride, padding):
    rng = np.random.default_rng(sum(shape) + sum(kernel))
    data = random_int8(rng, (2, *shape))
    run_case(ck, pool, data, kernel, stride, padding, -128, 127)


@pytest.mark.parametrize("pool", POOLS)
def test_pool_padding_never_wins(ck, pool):
    """All -128 input: zero padding would raise a max to 0 and pull an average up."""
    data = np.full((1, 3, 3, 2), -128, dtype=np.int8)
    got = run_case(ck, pool, data, (3, 3), (1, 1), (2, 2, 2, 2), -128, 127)
    assert (got == -128).all()


def test_avg_pool_rounds_half_away_from_zero(ck):
    """Means of two elements: x.5 rounds away from zero for both signs."""
    pairs = np.array([[1, 2], [-1, -2], [3, 4], [-3, -4], [0, -1], [0, 1], [127, 126],
                      [-128, -127]], dtype=np.int8)
    data = pairs.reshape(1, 1, 2 * len(pairs), 1)  # one row, pairs side by side
    got = run_case(ck, "avg_pool", data, (1, 2), (1, 2), (0, 0, 0, 0), -128, 127)
    assert got.ravel().tolist() == [2, -2, 4, -4, -1, 1, 127, -128]


@pytest.mark.parametrize("pool", POOLS)
@pytest.mark.parametrize("act", [(0, 127), (-5, 6), (3, 3), (-128, -128)])
def test_pool_activation_clamps(ck, pool, act):
    rng = np.random.default_rng(5)
    data = random_int8(rng, (1, 6, 6, 3))
    got = run_case(ck, pool, data, (2, 2), (2, 2), (0, 0, 0, 0), *act)
    assert got.min() >= act[0] and got.max() <= act[1]


@pytest.mark.parametrize("value", [-128, 127])
@pytest.mark.parametrize("side", [15, 16, 17])
def test_avg_pool_sums_at_the_halfword_limit(ck, value, side):
    """Windows of 225, 256 (the largest the DSP kernel sums in halfwords:
    256 * -128 = -2^15) and 289 elements of one extreme value, and a random
    fill of the same windows: each channel's average is exact."""
    for data in (np.full((1, side, side, 6), value, dtype=np.int8),
                 random_int8(np.random.default_rng(side), (1, side, side, 6), "extremes")):
        got = run_case(ck, "avg_pool", data, (side, side), (1, 1), (0, 0, 0, 0), -128, 127)
        if (data == value).all():
            assert (got == value).all()


@DETERMINISTIC
@given(
    seed=st.integers(0, 2**32 - 1),
    y=axes(),
    x=axes(),
    c=st.one_of(st.integers(1, 5), st.sampled_from([16, 17])),
    fill=st.sampled_from(FILLS),
    data=st.data(),
)
def test_avg_pool_counting_padding_matches_golden(ck, seed, y, x, c, fill, data):
    """count_include_pad: the divisor counts the padding within
    divisor_padding of the input (at most the padding on either side; any
    further bottom/right padding is a ceil_mode overhang, not counted)."""
    (h, kh, sh, top, bottom), (w, kw, sw, left, right) = y, x
    counted = (data.draw(st.integers(0, min(top, bottom))),
               data.draw(st.integers(0, min(left, right))))
    rng = np.random.default_rng(seed)
    x_int8 = random_int8(rng, (2, h, w, c), fill)
    act_min, act_max = random_act_range(rng, int(rng.integers(-128, 128)))
    padding = (top, bottom, left, right)
    expected = kernels.avg_pool(x_int8, (kh, kw), (sh, sw), padding, act_min, act_max, counted)
    got = ck.avg_pool(x_int8, (kh, kw), (sh, sw), padding, act_min, act_max, counted)
    np.testing.assert_array_equal(got, expected)


def test_avg_pool_divides_by_the_counted_window(ck):
    """All 100s, a 3x3 window with one padded row and column counted: the
    corner averages 4 * 100 / 9 = 44.4 -> 44, the edges 6 * 100 / 9 = 66.7
    -> 67, the interior 100."""
    data = np.full((1, 4, 4, 1), 100, dtype=np.int8)
    got = ck.avg_pool(data, (3, 3), (1, 1), (1, 1, 1, 1), -128, 127, (1, 1))[0, :, :, 0]
    assert got.tolist() == [[44, 67, 67, 44], [67, 100, 100, 67], [67, 100, 100, 67],
                            [44, 67, 67, 44]]
    np.testing.assert_array_equal(
        got, kernels.avg_pool(data, (3, 3), (1, 1), (1, 1, 1, 1), -128, 127, (1, 1))[0, :, :, 0])


@pytest.mark.parametrize("counted", [(-1, 0), (0, 3), (3, 0)])
def test_avg_pool_refuses_a_divisor_padding_out_of_range(runtime, counted):
    """Each divisor padding in [0, kernel)."""
    ffi, lib = runtime
    data = np.zeros(64, dtype=np.int8)
    p = ffi.from_buffer("int8_t[]", data)
    params = ffi.new("eg_pool_params *", [3, 3, 1, 1, 1, 1, -128, 127, *counted])
    status = lib.eg_avg_pool_s8(p, ffi.new("eg_shape *", [4, 4, 1]), params, p,
                                ffi.new("eg_shape *", [4, 4, 1]))
    assert status == lib.EG_ERR_ARG
