"""The compressed-weight kernels (codebook, sparse, huffman) against the
golden model, byte for byte, over random shapes, sparsities, codebooks,
entry and gap widths, quantization parameters and both roundings."""

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgegen.encode.storage import (
    store_codebook,
    store_huffman,
    store_sparse,
    weight_matrix,
)
from edgegen.ir import Rounding
from edgegen.reference import kernels
from edgegen.reference.numerics import fold_zero_point

from .support import random_bias, random_int8, random_requant

DETERMINISTIC = settings(derandomize=True, database=None, deadline=None, max_examples=150)
SPARSITIES = ("random", "empty", "full", "single", "empty_rows", "long_gaps")


def sparse_weights(rng, shape, codebook_size: int, sparsity: str) -> np.ndarray:
    """int8 weights drawing nonzeros from a codebook of ``codebook_size``
    distinct nonzero values, with the zero pattern ``sparsity`` names."""
    values = rng.permutation(np.concatenate((np.arange(-127, 0), np.arange(1, 128))))
    codebook = values[:codebook_size]
    weight = rng.choice(codebook, size=shape).astype(np.int8)
    rows = weight.reshape(shape[0], -1)
    if sparsity == "random":
        rows[rng.random(rows.shape) < rng.choice([0.3, 0.8, 0.95])] = 0
    elif sparsity == "empty":
        rows[:] = 0
    elif sparsity == "single":
        keep = rows[np.unravel_index(rng.integers(rows.size), rows.shape)]
        rows[:] = 0
        rows[np.unravel_index(rng.integers(rows.size), rows.shape)] = keep
    elif sparsity == "empty_rows":
        rows[rng.random(rows.shape[0]) < 0.5] = 0
        rows[rng.random(rows.shape) < 0.5] = 0
    elif sparsity == "long_gaps":
        rows[:, 1:-1] = 0  # at most the first and last column of each row
    return rows.reshape(shape)


def maybe_per_tensor(rng, requant):
    """Every other case: one multiplier and shift for all channels (the
    per-tensor scale of a shared codebook), which the C gets per tensor."""
    if rng.random() < 0.5:
        return requant
    channels = len(requant.multiplier)
    return replace(requant, multiplier=np.full(channels, requant.multiplier[0], np.int32),
                   shift=np.full(channels, requant.shift[0], np.int32))


def formats(rng, matrix):
    """Every layout of a matrix, with random widths where they are free."""
    bits = matrix.index_bits
    stored = [store_codebook(matrix), store_sparse(matrix, 16)]
    if bits < 8:
        stored.append(store_sparse(matrix, 8))
    lut_bits = int(rng.integers(1, 13))
    stored.append(store_huffman(matrix, 0, lut_bits))
    stored.append(store_huffman(matrix, int(rng.integers(1, 12)), lut_bits))
    stored.append(store_huffman(matrix, int(rng.integers(1, 12)), lut_bits,
                                int(rng.integers(1, 13))))
    return stored


def check_fc(ck, seed, features, outputs, codebook_size, sparsity, rounding, batch=2):
    rng = np.random.default_rng(seed)
    weight = sparse_weights(rng, (outputs, features), codebook_size, sparsity)
    x = random_int8(rng, (batch, features))
    bias = random_bias(rng, outputs, features)
    zp = int(rng.choice([-128, 127, 0, int(rng.integers(-128, 128))]))
    requant = maybe_per_tensor(rng, random_requant(rng, outputs, features, rounding,
                                                   rng.choice(["realistic", "wild"])))
    expected = kernels.fully_connected(x, weight, bias, zp, requant)
    folded = fold_zero_point(weight, bias, zp)
    for stored in formats(rng, weight_matrix(weight)):
        got, statuses = ck.fully_connected_stored(x, stored, folded, requant)
        assert statuses == [ck.lib.EG_OK] * batch, (stored.format, stored.params)
        np.testing.assert_array_equal(got, expected, err_msg=f"{stored.format} {stored.params}")


def check_conv(ck, seed, h, w, c, o, kernel, stride, padding, codebook_size, sparsity,
               rounding, batch=2, groups=1):
    """``groups`` divides c and o (groups = c: depthwise)."""
    rng = np.random.default_rng(seed)
    kh, kw = kernel
    weight = sparse_weights(rng, (o, kh, kw, c // groups), codebook_size, sparsity)
    x = random_int8(rng, (batch, h, w, c))
    terms = kh * kw * c // groups
    bias = random_bias(rng, o, terms)
    zp = int(rng.choice([-128, 127, 0, int(rng.integers(-128, 128))]))
    requant = maybe_per_tensor(rng, random_requant(rng, o, terms, rounding,
                                                   rng.choice(["realistic", "wild"])))
    expected = kernels.conv2d(x, weight, bias, stride, padding, zp, requant, groups)
    folded = fold_zero_point(weight, bias, zp)
    for stored in formats(rng, weight_matrix(weight)):
        got, statuses = ck.conv2d_stored(x, stored, kernel, folded, stride, padding, zp, requant,
                                         misalign=seed % 4, groups=groups)
        assert statuses == [ck.lib.EG_OK] * batch, (stored.format, stored.params)
        np.testing.assert_array_equal(got, expected, err_msg=f"{stored.format} {stored.params}")


@DETERMINISTIC
@given(
    seed=st.integers(0, 2**32 - 1),
    features=st.one_of(st.integers(1, 60), st.sampled_from([256, 300, 1000])),
    outputs=st.integers(1, 10),
    codebook_size=st.one_of(st.integers(1, 8), st.sampled_from([15, 31, 63, 127, 200, 254])),
    sparsity=st.sampled_from(SPARSITIES),
    rounding=st.sampled_from(Rounding),
)
def test_fully_connected_compressed_matches_golden(ck, seed, features, outputs, codebook_size,
                                                   sparsity, rounding):
    check_fc(ck, seed, features, outputs, codebook_size, sparsity, rounding)


@st.composite
def conv_geometry(draw):
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    top, bottom = draw(st.integers(0, kh - 1)), draw(st.integers(0, kh - 1))
    left, right = draw(st.integers(0, kw - 1)), draw(st.integers(0, kw - 1))
    h = draw(st.integers(max(1, kh - top - bottom), 9))
    w = draw(st.integers(max(1, kw - left - right), 9))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    return h, w, (kh, kw), stride, (top, bottom, left, right)


@DETERMINISTIC
@given(
    seed=st.integers(0, 2**32 - 1),
    geometry=conv_geometry(),
    c=st.integers(1, 6),
    o=st.integers(1, 6),
    codebook_size=st.one_of(st.integers(1, 8), st.sampled_from([31, 127, 254])),
    sparsity=st.sampled_from(SPARSITIES),
    rounding=st.sampled_from(Rounding),
)
def test_conv2d_compressed_matches_golden(ck, seed, geometry, c, o, codebook_size, sparsity,
                                          rounding):
    h, w, kernel, stride, padding = geometry
    check_conv(ck, seed, h, w, c, o, kernel, stride, padding, codebook_size, sparsity, rounding)


@DETERMINISTIC
@given(
    seed=st.integers(0, 2**32 - 1),
    geometry=conv_geometry(),
    groups=st.integers(2, 5),
    per_group=st.integers(1, 4),  # 1: depthwise
    outputs_per_group=st.integers(1, 3),  # the depth multiplier when depthwise
    codebook_size=st.one_of(st.integers(1, 8), st.sampled_from([31, 127])),
    sparsity=st.sampled_from(SPARSITIES),
    rounding=st.sampled_from(Rounding),
)
def test_grouped_and_depthwise_conv2d_compressed_matches_golden(
        ck, seed, geometry, groups, per_group, outputs_per_group, codebook_size, sparsity,
        rounding):
    h, w, kernel, stride, padding = geometry
    check_conv(ck, seed, h, w, groups * per_group, groups * outputs_per_group, kernel, stride,
               padding, codebook_size, sparsity, rounding, groups=groups)


@pytest.mark.parametrize("groups", [0, 3, 4])
def test_conv_groups_not_dividing_the_channels_are_refused(ck, groups):
    """6 input channels, 4 outputs: groups 0, 3 (not dividing 4) and 4 (not
    dividing 6) are refused before anything is written."""
    rng = np.random.default_rng(6)
    weight = sparse_weights(rng, (4, 3, 3, 3), 5, "full")
    stored = store_sparse(weight_matrix(weight), 16)
    requant = random_requant(rng, 4, 27, Rounding.DOUBLE)
    out, statuses = ck.conv2d_stored(random_int8(rng, (1, 5, 5, 6)), stored, (3, 3),
                                     np.zeros(4, np.int32), (1, 1), (1, 1, 1, 1), 0, requant,
                                     groups=groups)
    assert statuses == [ck.lib.EG_ERR_ARG]
    assert (out == 0x5A).all()


@pytest.mark.parametrize("rounding", list(Rounding))
def test_lenet_shaped_layers(ck, rounding):
    """LeNet-sized layers: fc 800 -> 50 at 5 % density, conv 5x5x20 -> 50 on 12x12."""
    check_fc(ck, 1, 800, 50, 31, "random", rounding, batch=1)
    check_conv(ck, 2, 12, 12, 20, 8, (5, 5), (1, 1), (0, 0, 0, 0), 31, "random", rounding,
               batch=1)


def test_conv_scratch_too_small_is_refused(ck):
    rng = np.random.default_rng(3)
    weight = sparse_weights(rng, (2, 3, 3, 2), 5, "full")
    stored = store_sparse(weight_matrix(weight), 16)
    requant = random_requant(rng, 2, 18, Rounding.DOUBLE)
    x = random_int8(rng, (1, 4, 4, 2))
    _, statuses = ck.conv2d_stored(x, stored, (3, 3), np.zeros(2, np.int32), (1, 1),
                                   (0, 0, 0, 0), 0, requant,
                                   scratch_bytes=stored.scratch_bytes(True) - 1)
    assert statuses == [ck.lib.EG_ERR_ARG]


@pytest.mark.parametrize("which", ["version", "codebook_zero"])
def test_inconsistent_weights_struct_is_refused(ck, which):
    rng = np.random.default_rng(4)
    weight = sparse_weights(rng, (3, 20), 5, "random")
    stored = store_sparse(weight_matrix(weight), 16)
    if which == "version":
        stored = type(stored)(**{**stored.__dict__, "struct": (99,) + stored.struct[1:]})
    else:
        arrays = dict(stored.arrays)
        arrays["codebook"] = arrays["codebook"].copy()
        arrays["codebook"][0] = 5
        stored = type(stored)(**{**stored.__dict__, "arrays": arrays})
    requant = random_requant(rng, 3, 20, Rounding.DOUBLE)
    _, statuses = ck.fully_connected_stored(random_int8(rng, (1, 20)), stored,
                                            np.zeros(3, np.int32), requant)
    assert statuses == [ck.lib.EG_ERR_ARG]


def test_huffman_pattern_that_is_no_code_is_a_data_error(ck):
    """An incomplete code (one symbol, code '0') meets a '1' bit: EG_ERR_DATA."""
    rng = np.random.default_rng(5)
    weight = np.full((2, 8), 7, dtype=np.int8)  # one symbol: the code '0'
    stored = store_huffman(weight_matrix(weight), 0, 4)
    arrays = dict(stored.arrays)
    arrays["stream"] = np.full_like(arrays["stream"], 0xFF)
    stored = type(stored)(**{**stored.__dict__, "arrays": arrays})
    requant = random_requant(rng, 2, 8, Rounding.DOUBLE)
    _, statuses = ck.fully_connected_stored(random_int8(rng, (1, 8)), stored,
                                            np.zeros(2, np.int32), requant)
    assert statuses == [ck.lib.EG_ERR_DATA]
