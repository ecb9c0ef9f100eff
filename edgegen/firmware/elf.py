"""Sizes read from a 32-bit little-endian ELF: sections and symbols.

Both Cortex-M and RV32 images are ELF32 little-endian, so a few struct
reads replace a dependency (and parsing the text output of size/nm, which
differs between binutils versions). Only what the size report needs is read.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

# ELF constants (System V ABI).
_ELFCLASS32 = 1
_ELFDATA2LSB = 1
SHT_SYMTAB = 2
SHT_NOBITS = 8
SHF_WRITE = 0x1
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4
STT_OBJECT = 1
STT_FUNC = 2


@dataclass(frozen=True)
class Section:
    name: str
    type: int
    flags: int
    address: int
    size: int

    @property
    def allocated(self) -> bool:
        return bool(self.flags & SHF_ALLOC) and self.size > 0


@dataclass(frozen=True)
class Symbol:
    name: str
    address: int
    size: int
    kind: int  # STT_FUNC, STT_OBJECT, ...
    section: int  # index of the section holding it


@dataclass(frozen=True)
class SectionTotals:
    """Bytes of the loaded image by kind: code, constants, initialised and
    zeroed data. Flash holds text + rodata + data (the data's initial
    values); RAM holds data + bss."""

    text: int
    rodata: int
    data: int
    bss: int

    @property
    def flash(self) -> int:
        return self.text + self.rodata + self.data

    @property
    def ram(self) -> int:
        return self.data + self.bss


class ElfFile:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._blob = self.path.read_bytes()
        ident = self._blob[:16]
        if ident[:4] != b"\x7fELF" or ident[4] != _ELFCLASS32 or ident[5] != _ELFDATA2LSB:
            raise ValueError(f"{self.path} is not a 32-bit little-endian ELF file")
        self._headers = self._read_section_headers()
        self.sections = [self._section(h) for h in self._headers]

    def _read_section_headers(self) -> list[tuple]:
        shoff, = struct.unpack_from("<I", self._blob, 0x20)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", self._blob, 0x2E)
        headers = [struct.unpack_from("<10I", self._blob, shoff + i * shentsize) for i in range(shnum)]
        names_offset = headers[shstrndx][4]
        self._section_names_offset = names_offset
        return headers

    def _string(self, table_offset: int, index: int) -> str:
        end = self._blob.index(b"\0", table_offset + index)
        return self._blob[table_offset + index : end].decode("ascii", "replace")

    def _section(self, header: tuple) -> Section:
        name, kind, flags, address, _offset, size = header[:6]
        return Section(self._string(self._section_names_offset, name), kind, flags, address, size)

    def totals(self) -> SectionTotals:
        text = rodata = data = bss = 0
        for s in self.sections:
            if not s.allocated:
                continue
            if s.type == SHT_NOBITS:
                bss += s.size
            elif s.flags & SHF_EXECINSTR:
                text += s.size
            elif s.flags & SHF_WRITE:
                data += s.size
            else:
                rodata += s.size
        return SectionTotals(text, rodata, data, bss)

    def symbols(self) -> list[Symbol]:
        """Every named symbol of the symbol table (locals included)."""
        found = []
        for header in self._headers:
            if header[1] != SHT_SYMTAB:
                continue
            offset, size, link, entsize = header[4], header[5], header[6], header[9]
            strings = self._headers[link][4]
            for at in range(offset, offset + size, entsize):
                name, value, sym_size, info, _other, shndx = struct.unpack_from("<IIIBBH", self._blob, at)
                if name:
                    found.append(Symbol(self._string(strings, name), value, sym_size, info & 0xF, shndx))
        return found

    def symbol_sizes(self) -> dict[str, int]:
        """Name -> size of every function and data object (the largest if a
        local name repeats, e.g. two static helpers of the same name)."""
        sizes: dict[str, int] = {}
        for sym in self.symbols():
            if sym.kind in (STT_FUNC, STT_OBJECT):
                sizes[sym.name] = max(sizes.get(sym.name, 0), sym.size)
        return sizes

    def function_address(self, name: str) -> int:
        """Address of the function ``name`` (Thumb bit cleared)."""
        for sym in self.symbols():
            if sym.name == name and sym.kind == STT_FUNC:
                return sym.address & ~1
        raise KeyError(f"function {name} not found in {self.path}")
