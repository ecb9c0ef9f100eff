"""The input and output inside the arena on emulated boards: the images
call <prefix>_invoke_in_arena where that needs less RAM than separate
buffers, their RAM counts the input and output once (in the arena), and
the harness and self-test are bit-exact; where it saves nothing they keep
<prefix>_invoke with separate buffers."""

import pytest
import torch
from torch import nn

from edgegen.firmware.boards import load_board
from edgegen.firmware.elf import ElfFile
from edgegen.jobs.board_verify import verify_firmware
from edgegen.jobs.firmware_build import build_firmware
from edgegen.jobs.lower import lower
from edgegen.jobs.quantize import QuantizeOptions, quantize_model
from firmware_helpers import board_vectors, check_verified_run, require_board_tools

WIDTHS = [784, 64, 64, 64, 8, 64, 64, 64, 784]  # MLPerf Tiny's autoencoder shape, 28x28 input


def autoencoder() -> nn.Sequential:
    layers = [nn.Flatten()]
    for a, b in zip(WIDTHS, WIDTHS[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def linear() -> nn.Sequential:
    """One layer: no arena at all, so the input and output cannot share it."""
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 10))


@pytest.fixture(scope="module")
def models(fashion):
    graphs = {}
    for name, factory in {"autoencoder": autoencoder, "linear": linear}.items():
        torch.manual_seed(0)
        graphs[name] = quantize_model(factory().eval(), name, fashion,
                                      QuantizeOptions(calib_samples=100))
    return graphs


@pytest.mark.parametrize("board_name", ["qemu-mps2-an386", "qemu-virt-rv32"])
def test_the_images_hold_the_input_and_output_in_the_arena(models, fashion, tmp_path,
                                                           board_name):
    board = load_board(board_name)
    require_board_tools(board, emulate=True)
    qgraph = models["autoencoder"]
    memory = lower(qgraph).memory
    # max(784 + 64, 64 + 784), against a 128 B arena + 784 + 784 B of buffers.
    assert memory.in_arena.arena_size == 848 and memory.arena_size == 128

    build = build_firmware(qgraph, board, tmp_path / "fw")

    f = build.footprint
    assert f.io_in_arena and (f.arena_bytes, f.io_bytes) == (848, 0)
    # The footprint image's static RAM is the one arena (and a few bytes of start-up).
    footprint = ElfFile(build.images["footprint"]).totals()
    assert 848 <= footprint.ram <= 848 + 16
    assert ElfFile(build.images["harness"]).totals().ram == footprint.ram
    assert f.ram_bytes < memory.arena_size + 784 + 784 + f.stack.bytes
    assert "holding the input and output: autoencoder_invoke_in_arena" in build.summary_lines()[1]
    assert any(c.what.startswith("input 28x28x1 int8 in the 848 B arena") and c.bytes == 784
               for c in build.ram_consumers)
    assert "autoencoder_invoke_in_arena(arena)" in \
        (build.folder / "board" / "footprint_main.c").read_text()

    vectors = board_vectors(qgraph, fashion, 8, 8)
    check_verified_run(verify_firmware(build, qgraph, vectors, tmp_path / "run"), board, qgraph,
                       vectors)


def test_separate_buffers_where_the_arena_cannot_hold_them(models, fashion, tmp_path):
    board = load_board("qemu-mps2-an386")
    require_board_tools(board, emulate=True)
    qgraph = models["linear"]
    memory = lower(qgraph).memory
    assert memory.arena_size == 0 and not memory.in_arena_saves

    build = build_firmware(qgraph, board, tmp_path / "fw")

    f = build.footprint
    assert not f.io_in_arena and f.io_bytes == 784 + 10
    assert "linear_invoke(input, output, arena)" in \
        (build.folder / "board" / "footprint_main.c").read_text()
    vectors = board_vectors(qgraph, fashion, 4, 4)
    check_verified_run(verify_firmware(build, qgraph, vectors, tmp_path / "run"), board, qgraph,
                       vectors)
