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

    [memory]                          # the linker script's regions
    flash_origin = 0x00000000
    ram_origin = 0x20000000

    [qemu]                            # only for boards verified under emulation
    binary = "qemu-system-arm"
    package = "qemu-system-arm"       # the Debian package that provides it
    machine = "mps2-an386"
    test_device = 0x100000            # RISC-V only: SiFive test device used to exit

Every field is checked; a missing, misspelled or mistyped one stops with a
``UserError`` that names the field and the file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from edgegen.errors import UserError
from edgegen.paths import PROJECT_ROOT

BOARDS_DIR = PROJECT_ROOT / "boards"
ARCHES = ("arm", "riscv")


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


def known_boards() -> list[str]:
    """Names of the boards in ``boards/``, sorted."""
    return sorted(p.stem for p in BOARDS_DIR.glob("*.toml"))


def load_board(board: str | Path) -> Board:
    """A board by name (``boards/<name>.toml``) or by the path of a .toml file."""
    path = _board_path(board)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"board file {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise UserError(f"cannot read board file {path}: {exc.strerror}") from None
    return _parse_board(data, path)


def _board_path(board: str | Path) -> Path:
    text = str(board)
    if text.endswith(".toml") or "/" in text:
        path = Path(board)
        if not path.is_file():
            raise UserError(f"board file {path} not found")
        return path
    path = BOARDS_DIR / f"{text}.toml"
    if not path.is_file():
        raise UserError(f"unknown board {text!r}: choose one of {', '.join(known_boards())} "
                        f"(or pass the path of a board .toml file)")
    return path


def _check_fields(table: dict, fields: dict, optional: dict, where: str, path: Path) -> None:
    allowed = {**fields, **optional}
    # Unknown names first: a misspelt field is reported as such, not as a
    # missing one.
    for key in table:
        if key not in allowed:
            raise UserError(f"board file {path}: unknown field '{where}{key}' "
                            f"(expected {', '.join(where + k for k in allowed)})")
    for key, (kind, what) in fields.items():
        if key not in table:
            raise UserError(f"board file {path}: missing field '{where}{key}' ({what})")
    for key, value in table.items():
        kind, what = allowed[key]
        # bool is an int in Python: never accept one for the other.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise UserError(f"board file {path}: field '{where}{key}' must be {what}, "
                            f"got {value!r}")


def _fail(path: Path, field: str, problem: str):
    raise UserError(f"board file {path}: field '{field}' {problem}")


def _parse_board(data: dict, path: Path) -> Board:
    _check_fields(data, _TOP_FIELDS, {"qemu": (dict, "a [qemu] table")}, "", path)
    _check_fields(data["memory"], _MEMORY_FIELDS, {}, "memory.", path)
    if data["name"] != path.stem:
        _fail(path, "name", f"is {data['name']!r} but the file is {path.name}: they must match")
    if data["arch"] not in ARCHES:
        _fail(path, "arch", f"must be one of {', '.join(ARCHES)}, got {data['arch']!r}")
    if not all(isinstance(flag, str) for flag in data["cflags"]):
        _fail(path, "cflags", "must be a list of strings")
    if data["fpu"] and data["arch"] != "arm":
        _fail(path, "fpu", "can only be true for arch = \"arm\"")
    for key in ("flash_bytes", "ram_bytes"):
        if data[key] <= 0:
            _fail(path, key, f"must be a positive integer, got {data[key]}")
    memory = data["memory"]
    for key, size in (("flash_origin", data["flash_bytes"]), ("ram_origin", data["ram_bytes"])):
        if memory[key] < 0 or memory[key] + size > _ADDRESS_LIMIT:
            _fail(path, f"memory.{key}", "places the region outside the 32-bit address space")
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
        flash_origin=memory["flash_origin"],
        ram_origin=memory["ram_origin"],
        qemu=_parse_qemu(data.get("qemu"), data["arch"], path),
        path=path,
    )


def _parse_qemu(table: dict | None, arch: str, path: Path) -> QemuMachine | None:
    if table is None:
        return None
    _check_fields(table, _QEMU_FIELDS, _QEMU_OPTIONAL, "qemu.", path)
    test_device = table.get("test_device")
    if arch == "riscv" and test_device is None:
        _fail(path, "qemu.test_device", "is required for RISC-V boards: the firmware exits "
                                        "through QEMU's SiFive test device at that address")
    return QemuMachine(table["binary"], table["package"], table["machine"], test_device)
