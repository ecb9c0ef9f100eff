"""Boards are data: ``boards/<name>.toml``, read with tomllib and validated.

A board file says how to compile for the part and how big it is:

    name = "qemu-mps2-an386"          # must equal the file name without .toml
    description = "..."
    cpu = "cortex-m4f"                # informative
    arch = "arm"                      # arm | riscv: start-up code, semihosting convention
    toolchain = "arm-none-eabi"       # the compiler is <toolchain>-gcc
    toolchain_package = "gcc-arm-none-eabi"   # the Debian package that provides it
    cflags = ["-mcpu=cortex-m4", ...] # CPU and ABI flags (optimisation flags are edgegen's)
    fpu = true                        # start-up code enables the FPU (Arm only)
    flash_bytes = 4194304             # the budget the model is checked against
    ram_bytes = 4194304
    kernels = "dsp"                   # optional, default "portable": "dsp" builds the
                                      # runtime's Arm DSP paths (-DEG_KERNELS_DSP=1), for
                                      # cores with __ARM_FEATURE_DSP (Cortex-M4, M7, M33);
                                      # "portable" the plain C that every core runs
    opt = "Os"                        # optional, default "Os": the optimisation level
                                      # firmware is built with (O2, Os or O3, as -O<opt>)

    [memory]                          # the linker script's regions
    flash_origin = 0x00000000
    ram_origin = 0x20000000

    [qemu]                            # only for boards verified under emulation
    binary = "qemu-system-arm"
    package = "qemu-system-arm"       # the Debian package that provides it
    machine = "mps2-an386"
    test_device = 0x100000            # RISC-V only: SiFive test device used to exit

Every field is checked; a missing, misspelled or mistyped one stops with a
``UserError`` that names the field and the file. Values end up in generated
Makefiles, linker scripts, C comments and command lines, so they are held
to what a real board needs: names of programs, packages and machines are
plain words (``[A-Za-z0-9][A-Za-z0-9_.+-]*``), compiler flags are single
``-flags`` without shell or make metacharacters, free text is one printable
line that cannot close a C comment, and sizes and addresses are 32-bit.

``kernels`` and ``opt`` are the defaults of ``edgegen build`` and ``deploy
--board`` (``--kernels``, ``--opt``); a board whose ``kernels`` is
"portable" is refused the DSP path, since its core lacks the instructions.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from edgegen.errors import UserError, brief
from edgegen.paths import BOARDS_DIR

ARCHES = ("arm", "riscv")
# The runtime's kernel paths: "dsp" uses the Arm DSP extension (SMLAD,
# SXTB16, SSUB8/SEL), "portable" is plain C and the reference.
KERNEL_PATHS = ("dsp", "portable")
DEFAULT_KERNELS = "portable"
# Optimisation levels firmware may be built with (the flag is -O<level>).
OPT_LEVELS = ("O2", "Os", "O3")
DEFAULT_OPT_LEVEL = "Os"


@dataclass(frozen=True)
class QemuMachine:
    binary: str  # qemu-system-arm | qemu-system-riscv32
    package: str  # Debian package providing ``binary``
    machine: str  # the -M value
    test_device: int | None  # RISC-V: address of the SiFive test (exit) device


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    cpu: str
    arch: str
    toolchain: str
    toolchain_package: str
    cflags: tuple[str, ...]
    fpu: bool
    flash_bytes: int
    ram_bytes: int
    flash_origin: int
    ram_origin: int
    qemu: QemuMachine | None
    path: Path
    kernels: str = DEFAULT_KERNELS  # "dsp" | "portable"
    opt: str = DEFAULT_OPT_LEVEL  # "O2" | "Os" | "O3"

    @property
    def emulated(self) -> bool:
        return self.qemu is not None

    def tool(self, name: str) -> str:
        """The cross tool ``name`` (gcc, nm, objcopy) of this board's toolchain."""
        return f"{self.toolchain}-{name}"


# field -> (type checked with isinstance, description used in error messages)
_TOP_FIELDS = {
    "name": (str, "a string"),
    "description": (str, "a string"),
    "cpu": (str, "a string"),
    "arch": (str, "one of " + ", ".join(ARCHES)),
    "toolchain": (str, "a toolchain prefix such as arm-none-eabi"),
    "toolchain_package": (str, "the Debian package of the toolchain"),
    "cflags": (list, "a list of strings"),
    "fpu": (bool, "true or false"),
    "flash_bytes": (int, "a positive integer"),
    "ram_bytes": (int, "a positive integer"),
    "memory": (dict, "a [memory] table"),
}
_OPTIONAL_TOP_FIELDS = {
    "qemu": (dict, "a [qemu] table"),
    "kernels": (str, "one of " + ", ".join(KERNEL_PATHS)),
    "opt": (str, "one of " + ", ".join(OPT_LEVELS)),
}
_MEMORY_FIELDS = {
    "flash_origin": (int, "an address (integer)"),
    "ram_origin": (int, "an address (integer)"),
}
_QEMU_FIELDS = {
    "binary": (str, "a QEMU program such as qemu-system-arm"),
    "package": (str, "the Debian package of the QEMU program"),
    "machine": (str, "a QEMU machine name (-M)"),
}
_QEMU_OPTIONAL = {"test_device": (int, "an address (integer)")}
_ADDRESS_LIMIT = 2**32
_MAX_FILE_BYTES = 1024 * 1024  # board files are a few hundred bytes
_MAX_TEXT = 200
_MAX_WORD = 100
_MAX_CFLAGS = 64
# A program, package or machine name: it is written unquoted into Makefiles
# and passed to apt-get and QEMU.
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")
_WORD_HELP = "a name of letters, digits and _ . + - (starting with a letter or digit)"
# One compiler flag. Flags reach a Makefile (where $ expands even inside
# shell quotes) and command lines: no whitespace, quotes, $, `, \\, #, ;, ...
_CFLAG = re.compile(r"-[A-Za-z0-9_.,+=:/@%-]+")
_CFLAG_HELP = "'-' then letters, digits and _ . , + = : / @ % - (no spaces, quotes or $)"


def known_boards() -> list[str]:
    """Names of the boards in ``boards/``, sorted."""
    return sorted(p.stem for p in BOARDS_DIR.glob("*.toml"))


def load_board(board: str | Path) -> Board:
    """A board by name (``boards/<name>.toml``) or by the path of a .toml file."""
    path = _board_path(board)
    text = _read_text(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"board file {path} is not valid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses into nested arrays and tables
        raise UserError(f"board file {path} is not valid TOML: nested too deeply") from None
    return _parse_board(data, path)


def _read_text(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > _MAX_FILE_BYTES:
            raise UserError(f"board file {path} is {size} bytes; a board file is a short TOML "
                            f"text (at most {_MAX_FILE_BYTES} bytes): is it the right file?")
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read board file {path}: {exc.strerror or exc}") from None
    try:
        # utf-8-sig: a byte-order mark some editors write is not an error.
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"board file {path} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at "
                        f"offset {exc.start}): save it as UTF-8") from None


def _board_path(board: str | Path) -> Path:
    text = str(board)
    if text.endswith(".toml") or "/" in text:
        path = Path(board)
        if not _is_file(path):
            raise UserError(f"board file {path} not found")
        return path
    path = BOARDS_DIR / f"{text}.toml"
    if not _is_file(path):
        raise UserError(f"unknown board {text!r}: choose one of {', '.join(known_boards())} "
                        f"(or pass the path of a board .toml file)")
    return path


def _is_file(path: Path) -> bool:
    # is_file() raises for a name too long or holding a NUL byte: not a board either.
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _check_fields(table: dict, fields: dict, optional: dict, where: str, path: Path) -> None:
    allowed = {**fields, **optional}
    # Unknown names first: a misspelt field is reported as such, not as a
    # missing one.
    for key in table:
        if key not in allowed:
            raise UserError(f"board file {path}: unknown field {brief(where + key)} "
                            f"(expected {', '.join(where + k for k in allowed)})")
    for key, (kind, what) in fields.items():
        if key not in table:
            raise UserError(f"board file {path}: missing field '{where}{key}' ({what})")
    for key, value in table.items():
        kind, what = allowed[key]
        # bool is an int in Python: never accept one for the other.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise UserError(f"board file {path}: field '{where}{key}' must be {what}, "
                            f"got {brief(value)}")




def _fail(path: Path, field: str, problem: str):
    raise UserError(f"board file {path}: field '{field}' {problem}")


def _check_word(path: Path, field: str, value: str) -> None:
    if len(value) > _MAX_WORD or not _WORD.fullmatch(value):
        _fail(path, field, f"must be {_WORD_HELP}, at most {_MAX_WORD} characters; got {brief(value)}")


def _check_line(path: Path, field: str, value: str) -> None:
    """Free text printed into C and Makefile comments."""
    if not value or len(value) > _MAX_TEXT or not value.isprintable():
        _fail(path, field, f"must be one line of 1 to {_MAX_TEXT} printable characters "
                           f"(no control characters or line breaks); got {brief(value)}")
    if "/*" in value or "*/" in value:
        _fail(path, field, f"must not contain '/*' or '*/' (it is printed in C comments); got {brief(value)}")


def _check_cflags(path: Path, flags: list) -> None:
    if not all(isinstance(flag, str) for flag in flags):
        _fail(path, "cflags", "must be a list of strings")
    if len(flags) > _MAX_CFLAGS:
        _fail(path, "cflags", f"has {len(flags)} flags, at most {_MAX_CFLAGS} are allowed")
    for flag in flags:
        if len(flag) > _MAX_TEXT or not _CFLAG.fullmatch(flag):
            _fail(path, "cflags", f"entry {brief(flag)} is not one compiler flag: each must be "
                                  f"{_CFLAG_HELP}, at most {_MAX_TEXT} characters")


def _check_text_fields(data: dict, path: Path) -> None:
    _check_word(path, "name", data["name"])
    if data["name"] != path.stem:
        _fail(path, "name", f"is {brief(data['name'])} but the file is {path.name}: they must match")
    for key in ("description", "cpu"):
        _check_line(path, key, data[key])
    for key in ("toolchain", "toolchain_package"):
        _check_word(path, key, data[key])
    _check_cflags(path, data["cflags"])


def _check_sizes(data: dict, path: Path) -> None:
    for key in ("flash_bytes", "ram_bytes"):
        if not 0 < data[key] <= _ADDRESS_LIMIT:
            _fail(path, key, f"must be a positive integer of at most 2^32 (4 GiB), got {data[key]}")
    memory = data["memory"]
    for key, size in (("flash_origin", data["flash_bytes"]), ("ram_origin", data["ram_bytes"])):
        if memory[key] < 0 or memory[key] + size > _ADDRESS_LIMIT:
            _fail(path, f"memory.{key}", "places the region outside the 32-bit address space")


def _parse_board(data: dict, path: Path) -> Board:
    _check_fields(data, _TOP_FIELDS, _OPTIONAL_TOP_FIELDS, "", path)
    _check_fields(data["memory"], _MEMORY_FIELDS, {}, "memory.", path)
    _check_text_fields(data, path)
    if data["arch"] not in ARCHES:
        _fail(path, "arch", f"must be one of {', '.join(ARCHES)}, got {brief(data['arch'])}")
    if data["fpu"] and data["arch"] != "arm":
        _fail(path, "fpu", "can only be true for arch = \"arm\"")
    _check_sizes(data, path)
    _check_build_defaults(data, path)
    return Board(
        name=data["name"],
        description=data["description"],
        cpu=data["cpu"],
        arch=data["arch"],
        toolchain=data["toolchain"],
        toolchain_package=data["toolchain_package"],
        cflags=tuple(data["cflags"]),
        fpu=data["fpu"],
        flash_bytes=data["flash_bytes"],
        ram_bytes=data["ram_bytes"],
        flash_origin=data["memory"]["flash_origin"],
        ram_origin=data["memory"]["ram_origin"],
        qemu=_parse_qemu(data.get("qemu"), data["arch"], path),
        path=path,
        kernels=data.get("kernels", DEFAULT_KERNELS),
        opt=data.get("opt", DEFAULT_OPT_LEVEL),
    )


def _check_build_defaults(data: dict, path: Path) -> None:
    kernels = data.get("kernels", DEFAULT_KERNELS)
    if kernels not in KERNEL_PATHS:
        _fail(path, "kernels", f"must be one of {', '.join(KERNEL_PATHS)}, got {brief(kernels)}")
    if kernels == "dsp" and data["arch"] != "arm":
        _fail(path, "kernels", "can only be \"dsp\" for arch = \"arm\" (the Arm DSP extension)")
    opt = data.get("opt", DEFAULT_OPT_LEVEL)
    if opt not in OPT_LEVELS:
        _fail(path, "opt", f"must be one of {', '.join(OPT_LEVELS)} (without the dash), "
                           f"got {brief(opt)}")


def kernels_for(board: Board, requested: str | None) -> str:
    """The kernel path to build for ``board``: ``requested`` (--kernels),
    else the board's own field. The DSP path on a board whose field says
    portable would not assemble (or would fault) on its core: refused."""
    if requested is None:
        return board.kernels
    if requested not in KERNEL_PATHS:
        raise ValueError(f"kernels must be one of {', '.join(KERNEL_PATHS)}, got {requested!r}")
    if requested == "dsp" and board.kernels != "dsp":
        raise UserError(f"--kernels dsp: {board.name} ({board.cpu}) has no Arm DSP "
                        f"extension (its board file says kernels = \"{board.kernels}\"); build it "
                        "with --kernels portable, or leave --kernels out")
    return requested


def opt_flag_for(board: Board, requested: str | None) -> str:
    """The optimisation flag (-O2, -Os or -O3) to build ``board``'s firmware
    with: ``requested`` (a flag), else the board's ``opt`` field."""
    return check_opt_flag(f"-{board.opt}" if requested is None else requested)


def check_opt_flag(flag: str) -> str:
    """``flag`` if it is -O2, -Os or -O3 (it is written into Makefiles)."""
    if flag not in tuple(f"-{level}" for level in OPT_LEVELS):
        raise ValueError(f"opt must be one of {', '.join('-' + o for o in OPT_LEVELS)}, got {flag!r}")
    return flag


def _parse_qemu(table: dict | None, arch: str, path: Path) -> QemuMachine | None:
    if table is None:
        return None
    _check_fields(table, _QEMU_FIELDS, _QEMU_OPTIONAL, "qemu.", path)
    for key in _QEMU_FIELDS:
        _check_word(path, f"qemu.{key}", table[key])
    test_device = table.get("test_device")
    if test_device is not None and not 0 <= test_device < _ADDRESS_LIMIT:
        _fail(path, "qemu.test_device", f"must be a 32-bit address, got {test_device}")
    if arch == "riscv" and test_device is None:
        _fail(path, "qemu.test_device", "is required for RISC-V boards: the firmware exits "
                                        "through QEMU's SiFive test device at that address")
    return QemuMachine(table["binary"], table["package"], table["machine"], test_device)
