"""eg_clamp_s8 against the golden model."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgegen.reference import kernels

from .support import random_act_range, random_int8

DETERMINISTIC = settings(derandomize=True, database=None, deadline=None, max_examples=100)


@DETERMINISTIC
@given(seed=st.integers(0, 2**32 - 1), size=st.integers(1, 300),
       fill=st.sampled_from(["uniform", "extremes", "constant"]))
def test_clamp_matches_golden(ck, seed, size, fill):
    rng = np.random.default_rng(seed)
    x = random_int8(rng, (size,), fill)
    act_min, act_max = random_act_range(rng, int(rng.integers(-128, 128)))
    np.testing.assert_array_equal(ck.clamp(x, act_min, act_max),
                                  kernels.clamp(x, act_min, act_max))


@pytest.mark.parametrize("act", [(-128, 127), (0, 127), (-128, -128), (127, 127), (-3, 6)])
def test_clamp_every_int8_value(ck, act):
    x = np.arange(-128, 128, dtype=np.int8)
    np.testing.assert_array_equal(ck.clamp(x, *act), kernels.clamp(x, *act))


def test_clamp_in_place(runtime):
    """The one kernel allowed to run in place: output == input."""
    ffi, lib = runtime
    x = np.arange(-128, 128, dtype=np.int8)
    expected = kernels.clamp(x, -20, 20)
    p = ffi.from_buffer("int8_t[]", x)
    assert lib.eg_clamp_s8(p, x.size, -20, 20, p) == lib.EG_OK
    np.testing.assert_array_equal(x, expected)
