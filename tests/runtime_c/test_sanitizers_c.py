"""Every kernel under AddressSanitizer + UBSan, outputs checked against numpy.

A small driver (sanitize_driver.c) reads cases written here, runs each
kernel on exactly-sized heap buffers and writes the outputs back; any
out-of-bounds access, signed overflow, bad shift or misaligned load aborts
it with a nonzero exit status.
"""

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgegen import paths
from edgegen.host import compiler as host
from edgegen.encode.storage import interleave_rows
from edgegen.ir import Rounding
from edgegen.reference import numerics
from edgegen.reference import kernels
from edgegen.reference.numerics import fold_zero_point
from edgegen.reference.softmax import (
    MAX_DEPTH,
    log_softmax,
    log_softmax_parameters,
    softmax,
    softmax_parameters,
)
from toolchain_support import require_tool

from .conftest import VARIANTS

from .support import (
    INT32_MAX,
    INT32_MIN,
    random_act_range,
    random_bias,
    random_int8,
    random_requant,
    random_weights,
)

DRIVER = Path(__file__).with_name("sanitize_driver.c")
SANITIZE = ("-fsanitize=address,undefined", "-fno-sanitize-recover=all",
            "-fno-omit-frame-pointer", "-g")
OP = {"conv": 1, "fc": 2, "max_pool": 3, "avg_pool": 4, "clamp": 5,
      "requantize": 6, "srdhm": 7, "rdbp": 8, "depthwise": 9, "softmax": 20,
      "log_softmax": 21}
ROUNDING = {Rounding.DOUBLE: 0, Rounding.SINGLE: 1}


class Cases:
    """Records for the driver, each with the output numpy expects."""

    def __init__(self):
        self.chunks = []
        self.expected = []  # (name, status, expected bytes or None)

    def add(self, name, op, params, arrays, expected, status=0):
        parts = [np.array([OP[op], len(params), *params, len(arrays)], dtype=np.int32)]
        for arr in arrays:
            arr = np.ascontiguousarray(arr)
            assert arr.dtype in (np.int8, np.int32)
            parts.append(np.array([arr.dtype.itemsize, arr.size], dtype=np.int32))
            parts.append(arr.ravel())
        self.chunks.extend(p.tobytes() for p in parts)
        self.expected.append((name, status, None if expected is None else expected.tobytes()))

    def write(self, path: Path):
        path.write_bytes(b"".join(self.chunks))


def _requant_params(rq):
    return [ROUNDING[rq.rounding], rq.output_zero_point, rq.act_min, rq.act_max]


def conv_case(cases, rng, h, w, c, o, kernel, stride, padding, rounding, has_bias=True,
              regime="realistic", fill="uniform", depthwise=False, groups=1,
              scratch=False):
    """A convolution (eg_conv2d_s8 with ``groups``); ``depthwise``: groups =
    c (o a multiple of c), the filter passed as eg_depthwise_conv2d_s8 takes
    it, [kh][kw][o], with its optional scratch if ``scratch``."""
    kh, kw = kernel
    groups = c if depthwise else groups
    per_group = c // groups
    x = random_int8(rng, (1, h, w, c), fill)
    weight = random_weights(rng, (o, kh, kw, per_group), fill)
    bias = random_bias(rng, o, kh * kw * per_group) if has_bias else None
    zp = int(rng.integers(-128, 128))
    rq = random_requant(rng, o, kh * kw * per_group, rounding, regime)
    expected = kernels.conv2d(x, weight, bias, stride, padding, zp, rq, groups)[0]
    oh, ow = expected.shape[:2]
    params = [h, w, c, oh, ow, o, kh, kw, *stride, padding[0], padding[2], -zp,
              *_requant_params(rq), groups, int(scratch)]
    folded = fold_zero_point(weight, bias if has_bias else np.zeros(o), zp)
    stored = np.ascontiguousarray(weight[..., 0].transpose(1, 2, 0)) if depthwise else weight
    arrays = [x, stored, folded, rq.multiplier, rq.shift]
    op = "depthwise" if depthwise else "conv"
    cases.add(f"{op} {h}x{w}x{c}->{o} g{groups} k{kernel} s{stride} p{padding}", op,
              params, arrays, expected)


def fc_case(cases, rng, features, outputs, rounding, regime="realistic", fill="uniform"):
    x = random_int8(rng, (1, features), fill)
    weight = random_weights(rng, (outputs, features), fill)
    bias = random_bias(rng, outputs, features)
    zp = int(rng.integers(-128, 128))
    rq = random_requant(rng, outputs, features, rounding, regime)
    expected = kernels.fully_connected(x, weight, bias, zp, rq)[0]
    arrays = [x, interleave_rows(weight), fold_zero_point(weight, bias, zp), rq.multiplier,
              rq.shift]
    cases.add(f"fc {features}->{outputs}", "fc",
              [features, outputs, *_requant_params(rq)], arrays, expected)


def pool_case(cases, rng, pool, h, w, c, kernel, stride, padding, divisor_padding=(0, 0)):
    x = random_int8(rng, (1, h, w, c))
    act_min, act_max = random_act_range(rng, int(rng.integers(-128, 128)))
    extra = (divisor_padding,) if pool == "avg_pool" else ()
    expected = getattr(kernels, pool)(x, kernel, stride, padding, act_min, act_max, *extra)[0]
    oh, ow = expected.shape[:2]
    params = [h, w, c, oh, ow, c, *kernel, *stride, padding[0], padding[2], act_min, act_max,
              *divisor_padding]
    cases.add(f"{pool} {h}x{w}x{c} k{kernel} s{stride} p{padding} d{divisor_padding}", pool,
              params, [x], expected)


def build_cases() -> Cases:
    rng = np.random.default_rng(1234)
    cases = Cases()
    for rounding in Rounding:
        conv_case(cases, rng, 6, 7, 3, 4, (3, 3), (1, 1), (1, 1, 1, 1), rounding)
        conv_case(cases, rng, 9, 9, 5, 2, (3, 3), (2, 2), (0, 1, 0, 1), rounding,
                  has_bias=False)
        conv_case(cases, rng, 3, 2, 2, 3, (5, 4), (1, 3), (2, 2, 3, 1), rounding)
        conv_case(cases, rng, 1, 1, 17, 5, (1, 1), (1, 1), (0, 0, 0, 0), rounding)
        conv_case(cases, rng, 5, 5, 4, 6, (3, 3), (1, 1), (2, 2, 2, 2), rounding,
                  regime="wild", fill="extremes")
        conv_case(cases, rng, 6, 7, 12, 8, (3, 3), (1, 1), (1, 1, 1, 1), rounding, groups=4)
        conv_case(cases, rng, 5, 6, 9, 6, (3, 2), (2, 1), (0, 1, 1, 0), rounding, groups=3,
                  has_bias=False, regime="wild", fill="extremes")
        conv_case(cases, rng, 6, 5, 16, 24, (1, 1), (1, 1), (0, 0, 0, 0), rounding, groups=4)
        conv_case(cases, rng, 5, 5, 6, 12, (3, 3), (1, 1), (1, 1, 1, 1), rounding, groups=6)
        conv_case(cases, rng, 6, 7, 5, 10, (3, 3), (1, 1), (1, 1, 1, 1), rounding,
                  depthwise=True)
        conv_case(cases, rng, 9, 9, 8, 8, (3, 3), (2, 2), (0, 1, 0, 1), rounding,
                  has_bias=False, depthwise=True)
        conv_case(cases, rng, 7, 5, 12, 12, (3, 3), (1, 1), (1, 1, 1, 1), rounding,
                  depthwise=True, scratch=True)
        conv_case(cases, rng, 6, 6, 8, 8, (2, 3), (2, 1), (1, 0, 0, 2), rounding,
                  has_bias=False, depthwise=True, scratch=True)
        conv_case(cases, rng, 3, 2, 3, 3, (5, 4), (1, 3), (2, 2, 3, 1), rounding,
                  regime="wild", fill="extremes", depthwise=True)
        fc_case(cases, rng, 1, 1, rounding)
        fc_case(cases, rng, 37, 10, rounding)
        fc_case(cases, rng, 3, 9, rounding)  # fewer inputs than a chunk
        fc_case(cases, rng, 64, 8, rounding, regime="wild", fill="extremes")
    for pool in ("max_pool", "avg_pool"):
        pool_case(cases, rng, pool, 8, 8, 4, (2, 2), (2, 2), (0, 0, 0, 0))
        pool_case(cases, rng, pool, 7, 5, 17, (3, 3), (2, 2), (1, 1, 1, 1))
        pool_case(cases, rng, pool, 4, 4, 33, (4, 4), (1, 1), (3, 3, 3, 3))
        pool_case(cases, rng, pool, 1, 1, 1, (1, 1), (1, 1), (0, 0, 0, 0))
    # count_include_pad: the padding counted, with a ceil_mode overhang beyond it
    pool_case(cases, rng, "avg_pool", 7, 6, 9, (3, 3), (2, 2), (1, 2, 1, 1), (1, 1))
    x = np.arange(-128, 128, dtype=np.int8)
    cases.add("clamp relu6", "clamp", [x.size, -3, 40], [x], kernels.clamp(x, -3, 40))
    for scale, rows, depth in ((0.004, 3, 10), (0.1, 2, 37), (2.0, 1, 1), (0.05, 2, MAX_DEPTH)):
        x = random_int8(rng, (rows, depth), "extremes")
        x[-1] = 5  # an all-equal row: the largest sum of exponentials
        params = list(softmax_parameters(scale))
        cases.add(f"softmax {rows}x{depth}", "softmax", [rows, depth, *params], [x],
                  softmax(x, *params))
        for rounding in Rounding:
            params = list(log_softmax_parameters(scale))
            cases.add(f"log_softmax {rows}x{depth} {rounding.name}", "log_softmax",
                      [rows, depth, *params, ROUNDING[rounding]], [x],
                      log_softmax(x, *params, rounding))

    corners = np.array([INT32_MIN, INT32_MIN + 1, -(1 << 30), -3, -1, 0, 1, 3, 1 << 30,
                        INT32_MAX], dtype=np.int64)
    a, b = (g.ravel() for g in np.meshgrid(corners, corners))
    cases.add("srdhm corners", "srdhm", [a.size], [a.astype(np.int32), b.astype(np.int32)],
              numerics.saturating_rounding_doubling_high_mul(a, b).astype(np.int32))
    xs, es = (g.ravel() for g in np.meshgrid(corners, np.arange(32)))
    cases.add("rdbp corners", "rdbp", [xs.size], [xs.astype(np.int32), es.astype(np.int32)],
              numerics.rounding_divide_by_pot(xs, es).astype(np.int32))
    acc = np.concatenate([corners, rng.integers(INT32_MIN, INT32_MAX, size=300, endpoint=True)])
    for rounding in Rounding:
        mult = rng.choice([0, 1, 1 << 30, INT32_MAX], size=acc.size)
        shift = rng.integers(-31, 31, size=acc.size)
        shift[:64] = np.repeat([-31, 30], 32)
        cases.add(f"requantize {rounding.name}", "requantize", [acc.size, ROUNDING[rounding]],
                  [acc.astype(np.int32), mult.astype(np.int32), shift.astype(np.int32)],
                  numerics.requantize(acc, mult, shift, rounding).astype(np.int32))

    # Rejected arguments: nothing may be read or written.
    x = random_int8(rng, (1, 4, 4, 2))
    cases.add("max_pool window past the input", "max_pool",
              [4, 4, 2, 5, 4, 2, 2, 2, 1, 1, 0, 0, -128, 127, 0, 0], [x], None, status=1)
    cases.add("conv NULL filter", "conv",
              [4, 4, 2, 4, 4, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, -128, 127],
              [x, np.zeros(0, np.int8), np.zeros(0, np.int32),
               np.array([1 << 30], np.int32), np.array([0], np.int32)], None, status=1)
    return cases


def parse_results(data: bytes):
    out, pos = [], 0
    while pos < len(data):
        status, nbytes = np.frombuffer(data, dtype=np.int32, count=2, offset=pos)
        pos += 8
        out.append((int(status), data[pos:pos + int(nbytes)]))
        pos += int(nbytes)
    return out


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_kernels_under_asan_and_ubsan(tmp_path, variant):
    cc = require_tool("gcc", "gcc")
    defines = tuple(f"-D{d}" for d in VARIANTS[variant])
    driver = host.compile_executable(
        [DRIVER, *host.runtime_sources()], [paths.RUNTIME_DIR], tmp_path / "sanitize_driver",
        cc=cc, opt="-O1", extra_flags=SANITIZE + defines,
    )
    cases = build_cases()
    cases.write(tmp_path / "cases.bin")
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    run = subprocess.run([str(driver), str(tmp_path / "cases.bin"), str(tmp_path / "out.bin")],
                         capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, f"exit status {run.returncode}\n{run.stderr[-4000:]}"
    results = parse_results((tmp_path / "out.bin").read_bytes())
    assert len(results) == len(cases.expected)
    for (name, status, expected), (got_status, got) in zip(cases.expected, results):
        assert got_status == status, name
        if expected is not None:
            assert got == expected, name
