"""The convolution kernels on emulated Cortex-M cores, byte for byte against
the golden model.

The host tests build the DSP kernels with C models of the instructions
(EG_DSP_EMULATE): they cannot reach the kernels' inline assembly, which
only a real Arm core (here QEMU's) runs. target_driver.c runs random
cases here on mps2-an386 (Cortex-M4: SMLAD, SXTB16 and the assembly of
conv2d.c, depthwise_conv2d.c and eg_requantize.h) and mps2-an385
(Cortex-M3: the portable C with eg_dot.h's Thumb-2 tile), at -O2 and -Os,
with and without the rounding fixed at build time (EG_FIXED_ROUNDING, as
generated builds define it); depthwise layers with and without their
optional scratch. Shapes cover what the assembly special-cases:
channel counts below, at and around multiples of four, odd output channel
counts, blocks of channels, windows at every border, strides 1 and 2.
"""

from __future__ import annotations

import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

from edgegen import paths
from edgegen.encode.storage import dense_conv_scratch_bytes
from edgegen.host.compiler import WARNING_FLAGS
from edgegen.ir import Rounding
from edgegen.reference import kernels
from edgegen.reference.numerics import fold_zero_point
from toolchain_support import require_tool

from .support import (FILLS, depthwise_scratch_bytes, random_bias, random_int8,
                      random_requant, random_weights)

HERE = Path(__file__).resolve().parent
DRIVER = HERE / "target_driver.c"
LINKER_SCRIPT = HERE / "target_arm.ld"
RUNTIME_SOURCES = ("conv2d.c", "depthwise_conv2d.c", "requantize.c")

CORES = {
    "m4-dsp": ("mps2-an386", ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard",
                              "-mfpu=fpv4-sp-d16", "-DEG_KERNELS_DSP=1"]),
    "m3": ("mps2-an385", ["-mcpu=cortex-m3", "-mthumb"]),
}
BUILDS = [  # (core, optimisation, fixed rounding or None)
    ("m4-dsp", "-O2", None),
    ("m4-dsp", "-O2", Rounding.DOUBLE),
    ("m4-dsp", "-Os", Rounding.DOUBLE),
    ("m4-dsp", "-Os", None),
    ("m3", "-O2", Rounding.DOUBLE),
    ("m3", "-Os", None),
]


class Case:
    def __init__(self, op, x, weight, bias, stride, padding, zp, requant, groups=1):
        self.op, self.x, self.weight, self.bias = op, x, weight, bias
        self.stride, self.padding, self.zp, self.requant = stride, padding, zp, requant
        self.groups = groups
        self.expected = kernels.conv2d(x[None], weight, bias, stride, padding, zp, requant,
                                       groups)[0]


def conv_case(rng, h, w, c, o, kernel, stride, padding, rounding, groups=1,
              regime="realistic"):
    kh, kw = kernel
    x = random_int8(rng, (h, w, c), rng.choice(FILLS))
    weight = random_weights(rng, (o, kh, kw, c // groups), rng.choice(FILLS))
    terms = kh * kw * c // groups
    bias = random_bias(rng, o, terms) if rng.random() < 0.9 else None
    zp = int(rng.choice([-128, 127, 0, int(rng.integers(-128, 128))]))
    requant = random_requant(rng, o, terms, rounding, regime)
    return Case("conv", x, weight, bias, stride, padding, zp, requant, groups)


def depthwise_case(rng, h, w, c, multiplier, kernel, stride, padding, rounding,
                   regime="realistic"):
    kh, kw = kernel
    o = c * multiplier
    x = random_int8(rng, (h, w, c), rng.choice(FILLS))
    weight = random_weights(rng, (o, kh, kw, 1), rng.choice(FILLS))
    bias = random_bias(rng, o, kh * kw) if rng.random() < 0.9 else None
    zp = int(rng.choice([-128, 127, 0, int(rng.integers(-128, 128))]))
    requant = random_requant(rng, o, kh * kw, rounding, regime)
    return Case("depthwise", x, weight, bias, stride, padding, zp, requant, groups=c)


def cases_for(rounding_choices, seed) -> list[Case]:
    rng = np.random.default_rng(seed)

    def rounding():
        return rounding_choices[int(rng.integers(len(rounding_choices)))]

    def regime():
        return "wild" if rng.random() < 0.2 else "realistic"

    cases = []
    # 1x1: input channels around multiples of four (the widened steps and
    # their tail), output channels odd and even, below and above a block
    for c in (1, 2, 3, 4, 5, 7, 8, 12, 16, 17, 32, 64):
        for o in (1, 2, 3, 8, 9, 16, 17, 64):
            if rng.random() < 0.5:
                continue
            h, w = int(rng.integers(1, 6)), int(rng.integers(1, 6))
            stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
            cases.append(conv_case(rng, h, w, c, o, (1, 1), stride, (0, 0, 0, 0), rounding(),
                                   regime=regime()))
    # the KWS pointwise layer and a grouped 1x1
    cases.append(conv_case(rng, 5, 5, 64, 64, (1, 1), (1, 1), (0, 0, 0, 0), rounding()))
    cases.append(conv_case(rng, 3, 3, 16, 24, (1, 1), (1, 1), (0, 0, 0, 0), rounding(),
                           groups=4))
    # gathered windows
    for kernel, stride, padding, c, o in [((3, 3), (1, 1), (1, 1, 1, 1), 3, 8),
                                          ((10, 4), (2, 2), (4, 5, 1, 2), 1, 16),
                                          ((3, 3), (2, 2), (0, 1, 0, 1), 8, 5),
                                          ((2, 5), (1, 3), (1, 0, 2, 1), 6, 3)]:
        cases.append(conv_case(rng, 7, 6, c, o, kernel, stride, padding, rounding(),
                               regime=regime()))
    # depthwise: 3x3 at every border, strides 1 and 2, channel counts around
    # multiples of four and blocks; other kernels and depth multipliers
    for c in (1, 3, 4, 5, 8, 12, 16, 20, 36, 64):
        for stride, padding in [((1, 1), (1, 1, 1, 1)), ((2, 2), (0, 1, 0, 1)),
                                ((2, 2), (1, 1, 1, 1)), ((1, 1), (0, 0, 0, 0)),
                                ((1, 2), (2, 0, 1, 2))]:
            if rng.random() < 0.4:
                continue
            h, w = int(rng.integers(1, 8)), int(rng.integers(1, 8))
            h, w = max(h, 3 - sum(padding[:2])), max(w, 3 - sum(padding[2:]))
            cases.append(depthwise_case(rng, h, w, c, 1, (3, 3), stride, padding, rounding(),
                                        regime=regime()))
    for _ in range(2):  # the DS-CNN layer, with and without the scratch
        cases.append(depthwise_case(rng, 25, 5, 64, 1, (3, 3), (1, 1), (1, 1, 1, 1),
                                    rounding()))
    for kernel, multiplier, c in [((5, 5), 1, 8), ((1, 1), 1, 12), ((3, 3), 2, 6),
                                  ((2, 3), 3, 4), ((3, 3), 1, 2)]:
        cases.append(depthwise_case(rng, 6, 7, c, multiplier, kernel, (1, 1),
                                    (1, 1, 1, 1) if kernel[0] > 1 else (0, 0, 0, 0),
                                    rounding(), regime=regime()))
    return cases


def c_array(ctype: str, name: str, values) -> str:
    values = np.asarray(values).ravel()
    body = ",".join(str(int(v)) for v in values) if values.size else "0"
    return f"static const {ctype} {name}[{max(values.size, 1)}] = {{{body}}};\n"


FIXED_ROUNDING_C = {Rounding.DOUBLE: 0, Rounding.SINGLE: 1}
ROUNDING_C = {Rounding.DOUBLE: "EG_ROUNDING_DOUBLE", Rounding.SINGLE: "EG_ROUNDING_SINGLE"}


def cases_header(cases: list[Case]) -> str:
    out, entries = [], []
    max_output, max_scratch = 1, 4
    for k, t in enumerate(cases):
        h, w, c = t.x.shape
        o, kh, kw, ci = t.weight.shape
        oh, ow = t.expected.shape[:2]
        depthwise = t.op == "depthwise"
        # the depthwise filter is [KH][KW][O]; the conv filter OHWI
        filt = t.weight[..., 0].transpose(1, 2, 0) if depthwise else t.weight
        bias = fold_zero_point(t.weight, np.zeros(o) if t.bias is None else t.bias, t.zp)
        rq = t.requant
        per_tensor = len(set(zip(rq.multiplier.tolist(), rq.shift.tolist()))) == 1
        count = 1 if per_tensor else o
        if depthwise:  # the optional scratch for every other case
            scratch = depthwise_scratch_bytes(kh, kw) if k % 2 == 0 else 0
        else:
            scratch = dense_conv_scratch_bytes(kh, kw, ci)
        max_output = max(max_output, t.expected.size)
        max_scratch = max(max_scratch, scratch)
        out.append(c_array("int8_t", f"input{k}", t.x))
        out.append(c_array("int8_t", f"filter{k}", filt))
        out.append(c_array("int32_t", f"bias{k}", bias))
        out.append(c_array("int32_t", f"multiplier{k}", rq.multiplier[:count]))
        out.append(c_array("int32_t", f"shift{k}", rq.shift[:count]))
        out.append(c_array("int8_t", f"expected{k}", t.expected))
        top, _, left, _ = t.padding
        groups = 1 if depthwise else t.groups
        bias_ref = "NULL" if (t.bias is None and t.zp == 0 and k % 2) else f"bias{k}"
        if bias_ref == "NULL":
            assert not bias.any()
        entries.append(
            f"    {{{2 if depthwise else 1}, {{{h}, {w}, {c}}}, {{{oh}, {ow}, {o}}}, {kh}, {kw},\n"
            f"     {{{t.stride[0]}, {t.stride[1]}, {top}, {left}, {-t.zp}, {groups}}},\n"
            f"     {{multiplier{k}, shift{k}, {rq.output_zero_point}, {rq.act_min}, "
            f"{rq.act_max}, {ROUNDING_C[rq.rounding]}, {int(per_tensor)}}},\n"
            f"     input{k}, filter{k}, {bias_ref}, expected{k}, {scratch}}},\n")
    out.append(f"#define TEST_CASES {len(cases)}\n")
    out.append(f"#define MAX_OUTPUT {max_output}\n")
    out.append(f"#define MAX_SCRATCH {max_scratch}\n")
    out.append("static const test_case test_cases[TEST_CASES] = {\n" + "".join(entries) + "};\n")
    return "".join(out)


@pytest.mark.parametrize(("core", "opt", "fixed"), BUILDS,
                         ids=[f"{c}{o}{'' if f is None else '-fixed'}" for c, o, f in BUILDS])
def test_kernels_bit_exact_on_emulated_core(tmp_path, core, opt, fixed):
    cc = require_tool("arm-none-eabi-gcc", "gcc-arm-none-eabi")
    qemu = require_tool("qemu-system-arm", "qemu-system-arm")
    machine, cpu_flags = CORES[core]
    roundings = list(Rounding) if fixed is None else [fixed]
    cases = cases_for(roundings, seed=zlib.crc32(f"{core}{opt}{fixed}".encode()))
    (tmp_path / "target_cases.h").write_text(cases_header(cases))
    defines = [] if fixed is None else [f"-DEG_FIXED_ROUNDING={FIXED_ROUNDING_C[fixed]}"]
    sources = [str(paths.RUNTIME_DIR / name) for name in RUNTIME_SOURCES]
    elf = tmp_path / "driver.elf"
    build = subprocess.run(
        [cc, *WARNING_FLAGS, *cpu_flags, opt, *defines, "-ffunction-sections",
         "-fdata-sections", f"-I{paths.RUNTIME_DIR}", f"-I{tmp_path}", str(DRIVER), *sources,
         "-nostartfiles", "--specs=nano.specs", f"-T{LINKER_SCRIPT}", "-Wl,--gc-sections",
         "-o", str(elf)],
        capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    run = subprocess.run(
        [qemu, "-M", machine, "-nographic", "-monitor", "none", "-semihosting-config",
         "enable=on,target=native", "-kernel", str(elf)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    console = run.stdout + run.stderr
    assert run.returncode == 0, console
    assert f"cases {len(cases)}, failed 0" in console, console


def test_driver_reports_a_wrong_output(tmp_path):
    """The driver fails a case whose expected bytes are wrong (so that a
    run that passes has compared something)."""
    cc = require_tool("arm-none-eabi-gcc", "gcc-arm-none-eabi")
    qemu = require_tool("qemu-system-arm", "qemu-system-arm")
    rng = np.random.default_rng(5)
    case = conv_case(rng, 2, 3, 8, 4, (1, 1), (1, 1), (0, 0, 0, 0), Rounding.DOUBLE)
    case.expected = case.expected.copy()
    case.expected.flat[5] ^= 1
    (tmp_path / "target_cases.h").write_text(cases_header([case]))
    elf = tmp_path / "driver.elf"
    machine, cpu_flags = CORES["m4-dsp"]
    build = subprocess.run(
        [cc, *WARNING_FLAGS, *cpu_flags, "-O2", f"-I{paths.RUNTIME_DIR}", f"-I{tmp_path}",
         str(DRIVER), *[str(paths.RUNTIME_DIR / n) for n in RUNTIME_SOURCES],
         "-nostartfiles", "--specs=nano.specs", f"-T{LINKER_SCRIPT}", "-o", str(elf)],
        capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    run = subprocess.run(
        [qemu, "-M", machine, "-nographic", "-monitor", "none", "-semihosting-config",
         "enable=on,target=native", "-kernel", str(elf)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert run.returncode == 1
    assert "case 0: output 5" in run.stdout + run.stderr
