"""Board files: every shipped board loads; bad files name the bad field."""

import pytest

from edgegen.errors import UserError
from edgegen.firmware.boards import kernels_for, known_boards, load_board, opt_flag_for

EMULATED = {
    "qemu-mps2-an386": "mps2-an386",
    "qemu-mps2-an500": "mps2-an500",
    "qemu-mps2-an505": "mps2-an505",
    "qemu-mps2-an385": "mps2-an385",
    "qemu-virt-rv32": "virt",
    "qemu-microbit": "microbit",
}
REAL = {  # name -> (flash, RAM) in bytes
    "nucleo-f411re": (512 * 1024, 128 * 1024),
    "stm32f746g-disco": (1024 * 1024, 320 * 1024),
    "nrf52840-dk": (1024 * 1024, 256 * 1024),
    "rp2040-pico": (2048 * 1024, 264 * 1024),
    "esp32-c3": (4096 * 1024, 400 * 1024),
    "stm32l031": (32 * 1024, 8 * 1024),
}

GOOD = """\
name = "{name}"
description = "a test board"
cpu = "cortex-m4f"
arch = "arm"
toolchain = "arm-none-eabi"
toolchain_package = "gcc-arm-none-eabi"
cflags = ["-mcpu=cortex-m4", "-mthumb"]
fpu = false
flash_bytes = 65536
ram_bytes = 16384

[memory]
flash_origin = 0x08000000
ram_origin = 0x20000000
"""


def write_board(tmp_path, text, name="testboard"):
    path = tmp_path / f"{name}.toml"
    path.write_text(text.format(name=name))
    return path


def test_every_required_board_is_shipped():
    assert set(EMULATED) | set(REAL) <= set(known_boards())


@pytest.mark.parametrize("name", sorted(EMULATED))
def test_emulated_boards_name_their_qemu_machine(name):
    board = load_board(name)
    assert board.emulated and board.qemu.machine == EMULATED[name]
    assert board.qemu.binary in ("qemu-system-arm", "qemu-system-riscv32")


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_boards_have_their_datasheet_sizes(name):
    board = load_board(name)
    assert not board.emulated
    assert (board.flash_bytes, board.ram_bytes) == REAL[name]


def test_cores_are_the_required_ones():
    assert load_board("qemu-virt-rv32").cflags[0] == "-march=rv32imac"
    assert load_board("esp32-c3").cflags[0] == "-march=rv32imc"
    assert load_board("rp2040-pico").cflags[0] == "-mcpu=cortex-m0plus"
    assert load_board("qemu-mps2-an505").cflags[0] == "-mcpu=cortex-m33"
    microbit = load_board("qemu-microbit")
    assert microbit.cflags[0] == "-mcpu=cortex-m0" and not microbit.fpu
    assert (microbit.flash_bytes, microbit.ram_bytes) == (256 * 1024, 16 * 1024)
    assert (microbit.flash_origin, microbit.ram_origin) == (0, 0x20000000)


def test_a_good_file_loads_by_path(tmp_path):
    board = load_board(write_board(tmp_path, GOOD))
    assert board.name == "testboard" and board.flash_origin == 0x08000000 and not board.emulated


def test_unknown_board_lists_the_known_ones():
    with pytest.raises(UserError, match="unknown board 'no-such-board'.*qemu-mps2-an386.*stm32l031"):
        load_board("no-such-board")


@pytest.mark.parametrize("field", ["cpu", "flash_bytes", "toolchain_package", "memory"])
def test_missing_field_is_named(tmp_path, field):
    lines = [line for line in GOOD.splitlines() if not line.startswith(field)]
    if field == "memory":
        lines = [line for line in lines if not line.startswith(("[memory]", "flash_origin", "ram_origin"))]
    path = write_board(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(UserError, match=f"{path}: missing field '{field}'"):
        load_board(path)


def test_missing_memory_field_is_named_with_its_table(tmp_path):
    path = write_board(tmp_path, GOOD.replace("ram_origin = 0x20000000\n", ""))
    with pytest.raises(UserError, match="missing field 'memory.ram_origin'"):
        load_board(path)


@pytest.mark.parametrize("old, new, field", [
    ("flash_bytes = 65536", 'flash_bytes = "64K"', "flash_bytes"),
    ("fpu = false", "fpu = 1", "fpu"),
    ("ram_bytes = 16384", "ram_bytes = true", "ram_bytes"),
    ('cflags = ["-mcpu=cortex-m4", "-mthumb"]', 'cflags = "-mthumb"', "cflags"),
    ('cflags = ["-mcpu=cortex-m4", "-mthumb"]', "cflags = [1, 2]", "cflags"),
    ('arch = "arm"', 'arch = "mips"', "arch"),
    ("ram_bytes = 16384", "ram_bytes = 0", "ram_bytes"),
    ("flash_origin = 0x08000000", "flash_origin = 0xFFFFF000", "memory.flash_origin"),
])
def test_wrong_field_is_named(tmp_path, old, new, field):
    path = write_board(tmp_path, GOOD.replace(old, new))
    with pytest.raises(UserError, match=f"field '{field}'"):
        load_board(path)


def test_misspelled_field_is_named(tmp_path):
    path = write_board(tmp_path, GOOD.replace("ram_bytes", "ram_byte"))
    with pytest.raises(UserError, match="unknown field 'ram_byte'"):
        load_board(path)


def test_name_must_match_the_file(tmp_path):
    path = tmp_path / "other.toml"
    path.write_text(GOOD.format(name="testboard"))
    with pytest.raises(UserError, match="field 'name'.*other.toml"):
        load_board(path)


def test_fpu_needs_arm(tmp_path):
    text = GOOD.replace('arch = "arm"', 'arch = "riscv"').replace("fpu = false", "fpu = true")
    with pytest.raises(UserError, match="field 'fpu'"):
        load_board(write_board(tmp_path, text))


def test_riscv_emulation_needs_the_exit_device(tmp_path):
    text = GOOD.replace('arch = "arm"', 'arch = "riscv"') + (
        '\n[qemu]\nbinary = "qemu-system-riscv32"\npackage = "qemu-system-misc"\nmachine = "virt"\n')
    with pytest.raises(UserError, match="field 'qemu.test_device'"):
        load_board(write_board(tmp_path, text))


def test_qemu_table_fields_are_checked(tmp_path):
    text = GOOD + '\n[qemu]\nbinary = "qemu-system-arm"\nmachine = "mps2-an386"\n'
    with pytest.raises(UserError, match="missing field 'qemu.package'"):
        load_board(write_board(tmp_path, text))


def test_invalid_toml_is_reported(tmp_path):
    path = write_board(tmp_path, GOOD + "this is not toml\n")
    with pytest.raises(UserError, match="is not valid TOML"):
        load_board(path)


# The cores with the Arm DSP extension (__ARM_FEATURE_DSP): Cortex-M4(F), M7, M33.
DSP_BOARDS = {"qemu-mps2-an386", "qemu-mps2-an500", "qemu-mps2-an505", "nucleo-f411re",
              "stm32f746g-disco", "nrf52840-dk"}


SMALL_FLASH_BOARDS = {"qemu-microbit", "stm32l031"}


@pytest.mark.parametrize("name", sorted(set(EMULATED) | set(REAL)))
def test_shipped_boards_name_their_kernels_and_opt(name):
    board = load_board(name)
    assert board.kernels == ("dsp" if name in DSP_BOARDS else "portable")
    # O2 where flash is plenty; Os on the two small-flash boards.
    assert board.opt == ("Os" if name in SMALL_FLASH_BOARDS else "O2")


def test_kernels_and_opt_default_when_absent(tmp_path):
    board = load_board(write_board(tmp_path, GOOD))
    assert (board.kernels, board.opt) == ("portable", "Os")


@pytest.mark.parametrize("kernels", ["dsp", "portable"])
@pytest.mark.parametrize("opt", ["O2", "Os", "O3"])
def test_kernels_and_opt_values_load(tmp_path, kernels, opt):
    # Top-level keys must precede the [memory] table in TOML.
    text = GOOD.replace("[memory]", f'kernels = "{kernels}"\nopt = "{opt}"\n\n[memory]')
    board = load_board(write_board(tmp_path, text))
    assert (board.kernels, board.opt) == (kernels, opt)


@pytest.mark.parametrize("line, field, why", [
    ('kernels = "simd"', "kernels", "must be one of dsp, portable"),
    ('kernels = "DSP"', "kernels", "must be one of dsp, portable"),
    ("kernels = true", "kernels", "must be one of dsp, portable"),
    ('opt = "-O2"', "opt", "must be one of O2, Os, O3"),
    ('opt = "O0"', "opt", "must be one of O2, Os, O3"),
    ("opt = 2", "opt", "must be one of O2, Os, O3"),
])
def test_bad_kernels_or_opt_is_named(tmp_path, line, field, why):
    path = write_board(tmp_path, GOOD.replace("[memory]", f"{line}\n\n[memory]"))
    with pytest.raises(UserError, match=f"{path}: field '{field}'.*{why}"):
        load_board(path)


def test_dsp_kernels_need_arm(tmp_path):
    text = GOOD.replace('arch = "arm"', 'arch = "riscv"').replace("[memory]", 'kernels = "dsp"\n\n[memory]')
    with pytest.raises(UserError, match="field 'kernels' can only be \"dsp\" for arch = \"arm\""):
        load_board(write_board(tmp_path, text))


def test_kernels_for_takes_the_request_or_the_board_field():
    m4, m3 = load_board("qemu-mps2-an386"), load_board("qemu-mps2-an385")
    assert kernels_for(m4, None) == "dsp" and kernels_for(m3, None) == "portable"
    assert kernels_for(m4, "portable") == "portable"  # the reference C runs everywhere
    with pytest.raises(UserError) as error:
        kernels_for(m3, "dsp")
    message = str(error.value)
    assert message.startswith("--kernels dsp: qemu-mps2-an385 (cortex-m3) has no Arm DSP extension")
    assert "--kernels portable" in message and "\n" not in message


def test_opt_flag_for_takes_the_request_or_the_board_field(tmp_path):
    text = GOOD.replace("[memory]", 'opt = "O3"\n\n[memory]')
    assert opt_flag_for(load_board(write_board(tmp_path, text)), None) == "-O3"
    assert opt_flag_for(load_board("qemu-mps2-an386"), None) == "-O2"
    assert opt_flag_for(load_board("qemu-microbit"), None) == "-Os"
    assert opt_flag_for(load_board("qemu-mps2-an386"), "-O2") == "-O2"
    with pytest.raises(ValueError, match="-O2, -Os, -O3"):
        opt_flag_for(load_board("qemu-mps2-an386"), "-O0")
