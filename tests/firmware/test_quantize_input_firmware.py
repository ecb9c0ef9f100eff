"""<prefix>_quantize_input on the targets, under QEMU: soft float on the
Cortex-M0 and M3 and on RV32IMAC, the FPU on the M4F; every byte equals the
golden model's quantize_input. And a firmware that does not call it (the
folder's footprint image) links none of it: no quantizer, no float routine.

The folder's own Makefile builds both images (the self-test image's main
replaced by a quantizing one), so the check covers its flags: warnings as
errors, -ffunction-sections, --gc-sections, -lgcc."""

import numpy as np
import pytest

from edgegen.firmware.boards import load_board
from edgegen.firmware.cross import BUILD_DIR, run_make
from edgegen.firmware.elf import ElfFile
from edgegen.firmware.folder import golden_selftest_vectors, write_firmware_folder
from edgegen.firmware.qemu import Timeouts, check_exit, run_elf
from edgegen.jobs.lower import lower
from edgegen.reference.golden import quantize_input
from firmware_helpers import require_board_tools
from qgraph_support import tiny_qgraph

BOARDS = {
    "cortex-m0": "qemu-microbit",
    "cortex-m3": "qemu-mps2-an385",
    "cortex-m4f": "qemu-mps2-an386",
    "rv32imac": "qemu-virt-rv32",
}
# Names of the compilers' float routines (Arm EABI, libgcc soft-fp) and the
# quantizer's own functions: none may be in an image that never quantizes.
FLOAT_ROUTINES = ("__aeabi_f", "__aeabi_d", "__aeabi_i2f", "__aeabi_ui2f", "sf3", "sf2",
                  "sfsi", "sisf", "df3", "df2")
VECTORS = 24

QUANTIZE_MAIN = r"""
/* Reads float input vectors from input.bin, writes {prefix}_quantize_input's
 * int8 vectors to output.bin (semihosting). */
#include <stdint.h>

#include "eg_board.h"
#include "{prefix}.h"

static float x[{PREFIX}_INPUT_SIZE];
static int8_t q[{PREFIX}_INPUT_SIZE];

int main(void)
{{
    int32_t in = eg_host_open("input.bin", EG_HOST_READ_BINARY);
    int32_t out = eg_host_open("output.bin", EG_HOST_WRITE_BINARY);
    int32_t length, v;

    if (in < 0 || out < 0) {{
        return EG_EXIT_NO_INPUT;
    }}
    length = eg_host_length(in);
    if (length < 0 || length % (int32_t)sizeof x != 0) {{
        return EG_EXIT_BAD_INPUT;
    }}
    for (v = 0; v < length / (int32_t)sizeof x; v++) {{
        if (eg_host_read(in, x, sizeof x) != 0) {{
            return EG_EXIT_BAD_INPUT;
        }}
        if ({prefix}_quantize_input(x, q) != 0) {{
            return EG_EXIT_INVOKE_FAILED;
        }}
        if (eg_host_write(out, q, sizeof q) != 0) {{
            return EG_EXIT_WRITE_FAILED;
        }}
    }}
    (void)eg_host_close(in);
    return eg_host_close(out) == 0 ? EG_EXIT_OK : EG_EXIT_WRITE_FAILED;
}}
"""


@pytest.fixture(scope="module")
def tiny():
    qgraph = tiny_qgraph()
    return qgraph, lower(qgraph)


def float_vectors(qgraph, count: int) -> np.ndarray:
    """Reals over and beyond the input's range, exact ties of its scale and
    their neighbours, and special values (NaN, +-inf, +-0, subnormals)."""
    params = qgraph.tensor(qgraph.input).qparams
    size = qgraph.tensor(qgraph.input).size
    rng = np.random.default_rng(5)
    scale = np.float32(params.scale)
    x = rng.uniform(-0.5, 1.5, size=(count, size)).astype(np.float32)
    k = rng.integers(-200, 200, size=(count, size // 2))
    ties = ((k + 0.5) * float(scale)).astype(np.float32)
    ties = np.nextafter(ties, rng.choice([-np.inf, 0, np.inf], size=ties.shape).astype(np.float32))
    x[:, : size // 2] = ties
    specials = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-45, -1e-45, 3e38, -3e38, 0.5,
                         float(scale) * 0.5, -float(scale) * 0.5], np.float32)
    x[0, : specials.size] = specials
    return x


def symbols(elf) -> set[str]:
    return {s.name for s in ElfFile(elf).symbols()}


@pytest.mark.parametrize("core", list(BOARDS))
def test_quantize_input_is_bit_exact_and_free_when_unused(tiny, tmp_path, core):
    board = load_board(BOARDS[core])
    require_board_tools(board, emulate=True)
    qgraph, lowered = tiny
    prefix = lowered.sources.prefix
    folder = tmp_path / "fw"
    inputs = np.zeros((1, qgraph.tensor(qgraph.input).size), dtype=np.int8)
    write_firmware_folder(folder, qgraph, board, lowered.sources, lowered.memory.arena_size,
                          golden_selftest_vectors(qgraph, inputs, "zeros"))

    # The footprint image never quantizes: nothing of it is linked.
    run_make(folder, board, ["footprint"])
    unused = symbols(folder / BUILD_DIR / "footprint.elf")
    assert f"{prefix}_invoke" in unused
    assert not {f"{prefix}_quantize_input", "eg_quantize_f32_s8"} & unused
    assert not [name for name in unused if any(r in name for r in FLOAT_ROUTINES)]

    # An image quantizing floats: the quantizer is linked, and on a core
    # without an FPU, the compiler's float division with it.
    (folder / "board" / "selftest_main.c").write_text(QUANTIZE_MAIN.format(
        prefix=prefix, PREFIX=prefix.upper()))
    run_make(folder, board, ["selftest"])
    elf = folder / BUILD_DIR / "selftest.elf"
    used = symbols(elf)
    assert {f"{prefix}_quantize_input", "eg_quantize_f32_s8"} <= used
    soft_division = {"__aeabi_fdiv", "__divsf3"} & used
    assert bool(soft_division) == (not board.fpu)

    x = float_vectors(qgraph, VECTORS)
    workdir = tmp_path / "run"
    workdir.mkdir()
    x.tofile(workdir / "input.bin")
    run = run_elf(board, elf, workdir, Timeouts(total=60.0, stall=30.0))
    check_exit(run, board, elf)
    got = np.fromfile(workdir / "output.bin", dtype=np.int8).reshape(x.shape)
    np.testing.assert_array_equal(got, quantize_input(qgraph, x))
