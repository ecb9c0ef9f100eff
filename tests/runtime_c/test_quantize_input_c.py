"""eg_quantize_f32_s8 (runtime_c/quantize_input.c) against the golden model's
quantize_floats, byte for byte: exact ties (k + 0.5) * scale and their
float32 neighbours, +-0, subnormals, +-inf, NaN, huge magnitudes, over many
scales and every kind of zero point; and its argument checks. The same
source compiles for the targets (test_toolchains_c.py, and
test_quantize_input_float_only below); tests/firmware runs it on them."""

import subprocess

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgegen import paths
from edgegen.host.compiler import WARNING_FLAGS, compile_executable
from edgegen.reference.golden import quantize_floats
from toolchain_support import require_tool

DETERMINISTIC = settings(derandomize=True, database=None, deadline=None, max_examples=400)
F32 = np.float32
SENTINEL = 0x5A
FLT_MAX = float(np.finfo(np.float32).max)
TINY = float(np.finfo(np.float32).smallest_subnormal)
SMALLEST_NORMAL = float(np.finfo(np.float32).smallest_normal)
SPECIALS = [0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, FLT_MAX, -FLT_MAX, TINY, -TINY,
            SMALLEST_NORMAL, -SMALLEST_NORMAL, 2.0**24, -(2.0**24), 1e38, -1e38, 0.5, -0.5]
SCALES = [1 / 255, 1 / 127.5, 2 / 255, 1.0, 0.5, 2.0**-7, 0.1, 3.0, 1e-3, 0.0234375, 1e4]


def quantize_c(runtime, x, scale, zero_point):
    """(status, output) of one call on the float32 values ``x``."""
    ffi, lib = runtime
    x = np.ascontiguousarray(x, dtype=np.float32)
    out = np.full(max(x.size, 1), SENTINEL, dtype=np.int8)
    status = lib.eg_quantize_f32_s8(ffi.from_buffer("float[]", x), x.size, float(scale),
                                    zero_point, ffi.from_buffer("int8_t[]", out))
    return status, out[: x.size]


def check(runtime, x, scale, zero_point):
    status, out = quantize_c(runtime, x, scale, zero_point)
    assert status == runtime[1].EG_OK
    np.testing.assert_array_equal(out, quantize_floats(x, scale, zero_point))


def ties(scale, k_range=range(-300, 301), ulps=3) -> np.ndarray:
    """(k + 0.5) * scale in float32 for each k, with up to ``ulps``
    neighbours on either side."""
    centre = np.array([F32((k + 0.5) * float(F32(scale))) for k in k_range], np.float32)
    values = [centre]
    for direction in (-np.inf, np.inf):
        x = centre
        for _ in range(ulps):
            x = np.nextafter(x, F32(direction))
            values.append(x)
    return np.concatenate(values)


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("zero_point", [-128, -1, 0, 5, 127])
def test_ties_and_their_neighbours(runtime, scale, zero_point):
    near = ties(scale)
    r = near / F32(scale)
    # Exact ties are among them, or the rounding rule would not be tested.
    assert np.count_nonzero(np.abs(r - np.trunc(r)) == 0.5) > 100
    check(runtime, np.concatenate([near, np.array(SPECIALS, np.float32)]), scale, zero_point)


def test_power_of_two_scale_hits_every_tie_and_clamps_symmetrically(runtime):
    """With scale 2^-7 every (k + 0.5) * scale is an exact tie; halves
    round away from zero, and beyond the range both ends clamp."""
    k = np.arange(-300, 301)
    x = ((k + 0.5) * 2.0**-7).astype(np.float32)
    status, out = quantize_c(runtime, x, 2.0**-7, 0)
    assert status == 0
    expected = np.clip(np.where(k >= 0, k + 1, k), -128, 127)
    np.testing.assert_array_equal(out, expected)


def test_nan_gives_the_zero_point_and_infinity_clamps(runtime):
    x = np.array([np.nan, -np.nan, np.inf, -np.inf, FLT_MAX, -FLT_MAX, 0.0, -0.0], np.float32)
    for zero_point in (-128, -3, 0, 127):
        status, out = quantize_c(runtime, x, 0.02, zero_point)
        assert status == 0
        assert out.tolist() == [zero_point, zero_point, 127, -128, 127, -128,
                                zero_point, zero_point]


def test_subnormal_values_and_scales(runtime):
    """Subnormal quotients round to 0; a subnormal scale turns subnormal
    values into ordinary quotients, rounded like any other."""
    x = np.array([TINY * k for k in range(-40, 41)], np.float32)
    for scale in (1 / 255, TINY, 3 * TINY, SMALLEST_NORMAL):
        for zero_point in (-128, 0, 9):
            check(runtime, x, scale, zero_point)


any32 = st.floats(width=32, allow_nan=True, allow_infinity=True, allow_subnormal=True)
scales = st.one_of(
    st.sampled_from(SCALES),
    st.floats(float(F32(1e-6)), 1e3, width=32),
    st.floats(TINY, FLT_MAX, width=32),
)


@st.composite
def values(draw, scale):
    """A float32 near a rounding decision of ``scale`` (a tie, its
    neighbours, the clamping edges), a special value, or any float32."""
    kind = draw(st.sampled_from(["tie", "tie", "edge", "special", "any"]))
    if kind == "any":
        return draw(any32)
    if kind == "special":
        return draw(st.sampled_from(SPECIALS))
    k = draw(st.integers(-300, 300)) if kind == "tie" else draw(st.sampled_from([-257, -129, 127, 255]))
    with np.errstate(over="ignore"):  # a huge scale's ties may be infinite
        x = F32((k + 0.5) * float(F32(scale)))
        for _ in range(draw(st.integers(0, 3))):
            x = np.nextafter(x, F32(draw(st.sampled_from([-np.inf, np.inf]))))
    return float(x)


@DETERMINISTIC
@given(data=st.data(), scale=scales, zero_point=st.integers(-128, 127))
def test_matches_golden_on_any_float32(runtime, data, scale, zero_point):
    x = np.array(data.draw(st.lists(values(scale), min_size=1, max_size=64)), np.float32)
    check(runtime, x, scale, zero_point)


@DETERMINISTIC
@given(seed=st.integers(0, 2**32 - 1), scale=scales, zero_point=st.integers(-128, 127))
def test_matches_golden_on_random_bit_patterns(runtime, seed, scale, zero_point):
    """Every float32 bit pattern is a possible input (NaNs with payloads,
    both infinities, subnormals)."""
    bits = np.random.default_rng(seed).integers(0, 2**32, size=256, dtype=np.uint64)
    check(runtime, bits.astype(np.uint32).view(np.float32), scale, zero_point)


@pytest.mark.parametrize("change, value", [
    ("input", None), ("output", None), ("size", 0), ("size", -1),
    ("scale", 0.0), ("scale", -0.0), ("scale", -1.0), ("scale", np.nan), ("scale", np.inf),
    ("zero_point", -129), ("zero_point", 128),
])
def test_refuses_bad_arguments_before_writing(runtime, change, value):
    ffi, lib = runtime
    x = np.linspace(-1, 1, 8, dtype=np.float32)
    out = np.full(8, SENTINEL, dtype=np.int8)
    args = {"input": ffi.from_buffer("float[]", x), "size": 8, "scale": 0.01, "zero_point": 3,
            "output": ffi.from_buffer("int8_t[]", out)}
    assert lib.eg_quantize_f32_s8(*args.values()) == lib.EG_OK
    out[:] = SENTINEL
    args[change] = ffi.NULL if value is None else value
    assert lib.eg_quantize_f32_s8(*args.values()) == lib.EG_ERR_ARG
    assert (out == SENTINEL).all()


UBSAN_DRIVER = r"""
#include <stdio.h>
#include <stdlib.h>

#include "eg_runtime.h"

/* argv: input file (float32 values), output file, then scale and zero point
 * pairs; writes the int8 output of each pair, one after another. */
int main(int argc, char **argv)
{
    FILE *in = fopen(argv[1], "rb");
    FILE *out = fopen(argv[2], "wb");
    long n;
    float *x;
    int8_t *q;
    int i;

    if (in == NULL || out == NULL || fseek(in, 0, SEEK_END) != 0) {
        return 2;
    }
    n = ftell(in) / (long)sizeof(float);
    rewind(in);
    x = malloc((size_t)n * sizeof *x);
    q = malloc((size_t)n);
    if (x == NULL || q == NULL || fread(x, sizeof *x, (size_t)n, in) != (size_t)n) {
        return 2;
    }
    for (i = 3; i + 1 < argc; i += 2) {
        if (eg_quantize_f32_s8(x, (int32_t)n, strtof(argv[i], NULL), atoi(argv[i + 1]), q) != EG_OK
            || fwrite(q, 1, (size_t)n, out) != (size_t)n) {
            return 3;
        }
    }
    free(x);
    free(q);
    fclose(in);
    return fclose(out) == 0 ? 0 : 2;
}
"""


def test_no_undefined_behaviour_on_a_sweep_of_bit_patterns(tmp_path):
    """Under UBSan with float-cast-overflow (not part of -fsanitize=undefined):
    no out-of-range float-to-int conversion whatever the input, and a
    sweep of the whole float32 range equals the golden model."""
    cc = require_tool("gcc", "gcc")
    (tmp_path / "driver.c").write_text(UBSAN_DRIVER)
    driver = compile_executable(
        [tmp_path / "driver.c", paths.RUNTIME_DIR / "quantize_input.c"], [paths.RUNTIME_DIR],
        tmp_path / "driver", cc=cc, opt="-O1",
        extra_flags=("-fsanitize=undefined,float-cast-overflow", "-fno-sanitize-recover=all"))
    bits = np.arange(0, 2**32, 4093, dtype=np.uint64).astype(np.uint32)  # every sign and exponent
    x = np.concatenate([bits.view(np.float32), np.array(SPECIALS, np.float32)])
    x.tofile(tmp_path / "x.bin")
    pairs = [(1 / 255, -128), (1e-3, 0), (TINY, 127), (FLT_MAX, -1), (0.0234375, 37)]
    command = [str(driver), str(tmp_path / "x.bin"), str(tmp_path / "q.bin")]
    for scale, zero_point in pairs:
        command += [float(F32(scale)).hex(), str(zero_point)]  # strtof reads it exactly
    run = subprocess.run(command, capture_output=True, text=True, timeout=300,
                         env={"UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"})
    assert run.returncode == 0 and run.stderr == "", run.stderr[-3000:]
    got = np.fromfile(tmp_path / "q.bin", dtype=np.int8).reshape(len(pairs), x.size)
    for row, (scale, zero_point) in zip(got, pairs):
        np.testing.assert_array_equal(row, quantize_floats(x, scale, zero_point))


# Float helpers of the toolchains' runtime libraries for double precision:
# their appearance would mean a promotion to double somewhere.
DOUBLE_HELPERS = ("__aeabi_d", "__aeabi_f2d", "__aeabi_i2d", "df2", "df3", "dfsi", "sidf",
                  "__extendsfdf2", "__truncdfsf2")
FLOAT_ONLY_TARGETS = {
    "cortex-m0": ("arm-none-eabi", ["-mcpu=cortex-m0", "-mthumb", "-Os"]),
    "cortex-m3": ("arm-none-eabi", ["-mcpu=cortex-m3", "-mthumb", "-O2"]),
    "cortex-m4f": ("arm-none-eabi", ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard",
                                     "-mfpu=fpv4-sp-d16", "-O2"]),
    "cortex-m7 double fpu": ("arm-none-eabi", ["-mcpu=cortex-m7", "-mthumb", "-mfloat-abi=hard",
                                                "-mfpu=fpv5-d16", "-O3"]),
    "rv32imac": ("riscv64-unknown-elf", ["-march=rv32imac", "-mabi=ilp32", "-Os",
                                         "-ffreestanding"]),
}
PACKAGES = {"arm-none-eabi": "gcc-arm-none-eabi", "riscv64-unknown-elf": "gcc-riscv64-unknown-elf"}
STRICT_FLOAT_WARNINGS = ("-Wdouble-promotion", "-Wfloat-conversion", "-Wconversion",
                         "-Wfloat-equal", "-Wshadow")


@pytest.mark.parametrize("target", list(FLOAT_ONLY_TARGETS))
def test_quantize_input_float_only(tmp_path, target):
    """Float arithmetic only, in single precision everywhere (no double
    helper referenced, clean under -Wdouble-promotion): on a soft-float
    core it calls libgcc's float routines, on the M4F none at all."""
    toolchain, flags = FLOAT_ONLY_TARGETS[target]
    gcc = require_tool(f"{toolchain}-gcc", PACKAGES[toolchain])
    nm = require_tool(f"{toolchain}-nm", PACKAGES[toolchain])
    obj = tmp_path / "quantize_input.o"
    run = subprocess.run([gcc, *WARNING_FLAGS, *STRICT_FLOAT_WARNINGS, *flags,
                          f"-I{paths.RUNTIME_DIR}", "-c", str(paths.RUNTIME_DIR / "quantize_input.c"),
                          "-o", str(obj)], capture_output=True, text=True)
    assert run.returncode == 0 and run.stderr == "", run.stderr
    undefined = subprocess.run([nm, "-u", str(obj)], capture_output=True, text=True,
                               check=True).stdout.split()
    undefined = [name for name in undefined if name != "U"]
    assert not [name for name in undefined if any(h in name for h in DOUBLE_HELPERS)], undefined
    if target in ("cortex-m4f", "cortex-m7 double fpu"):
        assert undefined == []  # the FPU does it all
    else:
        assert any("div" in name for name in undefined), undefined  # the soft-float division
