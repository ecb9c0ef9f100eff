"""eg_channel_shuffle_s8 against the golden model, byte for byte."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from edgegen.reference import kernels

from .support import random_int8

DETERMINISTIC = settings(derandomize=True, database=None, deadline=None, max_examples=100)


def c_shuffle(ck, x, groups):
    pixels, channels = x.shape
    x, x_p = ck.i8(x)
    out = np.full(x.shape, 0x5A, dtype=np.int8)
    status = ck.lib.eg_channel_shuffle_s8(x_p, pixels, channels, groups,
                                          ck.ffi.from_buffer("int8_t[]", out))
    return status, out


@DETERMINISTIC
@given(seed=st.integers(0, 2**32 - 1), pixels=st.integers(1, 40), groups=st.integers(1, 6),
       per_group=st.integers(1, 9))
def test_shuffle_matches_golden(ck, seed, pixels, groups, per_group):
    x = random_int8(np.random.default_rng(seed), (pixels, groups * per_group))
    status, out = c_shuffle(ck, x, groups)
    assert status == ck.lib.EG_OK
    np.testing.assert_array_equal(out, kernels.channel_shuffle(x, groups))


def test_groups_that_do_not_divide_the_channels_are_refused(ck):
    status, out = c_shuffle(ck, np.zeros((4, 12), dtype=np.int8), 5)
    assert status == ck.lib.EG_ERR_ARG and (out == 0x5A).all()
