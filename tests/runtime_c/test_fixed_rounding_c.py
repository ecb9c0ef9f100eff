"""A runtime built for one rounding (EG_FIXED_ROUNDING, as edgegen builds
a model's) computes that rounding bit-exactly and refuses the other."""

import numpy as np
import pytest

from edgegen.host.compiler import build_runtime_library
from edgegen.ir import Rounding
from edgegen.reference import kernels
from edgegen.reference.numerics import fold_zero_point

from .support import CKernels, random_bias, random_int8, random_requant, random_weights

VALUE = {Rounding.DOUBLE: 0, Rounding.SINGLE: 1}


@pytest.fixture(scope="module", params=list(Rounding))
def fixed(request, tmp_path_factory):
    """(rounding, CKernels of a runtime built for it)."""
    rounding = request.param
    workdir = tmp_path_factory.mktemp(f"runtime-fixed-{VALUE[rounding]}")
    ffi, lib = build_runtime_library(workdir, defines=(f"EG_FIXED_ROUNDING={VALUE[rounding]}",))
    return rounding, CKernels(ffi, lib)


def test_the_fixed_rounding_is_bit_exact(fixed):
    rounding, ck = fixed
    rng = np.random.default_rng(VALUE[rounding])
    x = random_int8(rng, (3, 7, 6, 5))
    weight = random_weights(rng, (4, 3, 3, 5))
    bias = random_bias(rng, 4, 45)
    requant = random_requant(rng, 4, 45, rounding, "wild")
    expected = kernels.conv2d(x, weight, bias, (1, 1), (1, 1, 1, 1), 3, requant)
    np.testing.assert_array_equal(ck.conv2d(x, weight, bias, (1, 1), (1, 1, 1, 1), 3, requant),
                                  expected)
    fc_weight = random_weights(rng, (9, 30))
    fc_bias = random_bias(rng, 9, 30)
    fc_requant = random_requant(rng, 9, 30, rounding, "wild")
    flat = random_int8(rng, (3, 30))
    np.testing.assert_array_equal(
        ck.fully_connected(flat, fc_weight, fold_zero_point(fc_weight, fc_bias, -7), fc_requant),
        kernels.fully_connected(flat, fc_weight, fc_bias, -7, fc_requant))


def test_the_other_rounding_is_refused(fixed):
    rounding, ck = fixed
    other = Rounding.SINGLE if rounding == Rounding.DOUBLE else Rounding.DOUBLE
    rng = np.random.default_rng(7)
    x = random_int8(rng, (1, 5, 5, 2))
    weight = random_weights(rng, (3, 3, 3, 2))
    requant = random_requant(rng, 3, 18, other)
    with pytest.raises(AssertionError, match="returned 1"):  # EG_ERR_ARG
        ck.conv2d(x, weight, None, (1, 1), (0, 0, 0, 0), 0, requant)
