"""Small formatters that turn Python values into C text for the templates.

Templates never format numbers or build identifiers themselves: every value
they print comes through one of these functions, which are unit-tested.
"""

from __future__ import annotations

import re
from fractions import Fraction

import numpy as np

from edgegen.ir import Rounding

# The eg_rounding value of each rounding (runtime_c/eg_runtime.h).
ROUNDING_VALUE = {Rounding.DOUBLE: 0, Rounding.SINGLE: 1}

_C_TYPES = {
    np.dtype(np.int8): ("int8_t", -(2**7), 2**7 - 1),
    np.dtype(np.int32): ("int32_t", -(2**31), 2**31 - 1),
    np.dtype(np.uint8): ("uint8_t", 0, 2**8 - 1),
    np.dtype(np.uint16): ("uint16_t", 0, 2**16 - 1),
    np.dtype(np.uint32): ("uint32_t", 0, 2**32 - 1),
}
_VALUES_PER_LINE = 16
_C_KEYWORDS = frozenset(
    "auto break case char const continue default do double else enum extern float for "
    "goto if inline int long register restrict return short signed sizeof static struct "
    "switch typedef union unsigned void volatile while".split()
)


def c_identifier(text: str) -> str:
    """A valid, lower-case C identifier from free text ("LeNet-5" -> "lenet_5")."""
    ident = re.sub(r"[^0-9a-zA-Z_]+", "_", text).strip("_").lower()
    ident = re.sub(r"_+", "_", ident)
    if not ident:
        raise ValueError(f"no C identifier can be made from {text!r}")
    if ident[0].isdigit():
        ident = "m_" + ident
    if ident in _C_KEYWORDS:
        ident += "_"
    return ident


MAX_NAME_LENGTH = 40
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
NAME_RULE = (f"a C identifier: letters, digits and '_', not starting with a digit, at most "
             f"{MAX_NAME_LENGTH} characters, not a C keyword and not starting with '__' or '_' "
             "and a capital")


def check_c_name(text: str) -> str:
    """``text`` itself if it can be the prefix of every generated C name
    (``<name>_invoke``, ``<NAME>_ARENA_SIZE``, ``<name>.h``); ValueError
    saying what is allowed otherwise. Names given by the user are checked,
    never silently rewritten, so the API they asked for is the one they get."""
    if not isinstance(text, str) or not _NAME.fullmatch(text):
        raise ValueError(f"{text!r} is not {NAME_RULE}")
    if len(text) > MAX_NAME_LENGTH:
        raise ValueError(f"{text!r} is {len(text)} characters long; a name must be {NAME_RULE}")
    if text in _C_KEYWORDS or text.startswith("__") or re.match(r"_[A-Z]", text):
        raise ValueError(f"{text!r} is reserved in C; a name must be {NAME_RULE}")
    return text


def c_prefix(name: str) -> str:
    """The prefix of the generated C names for a model called ``name``: the
    name itself when it is a valid one, else an identifier made from it."""
    try:
        return check_c_name(name)
    except ValueError:
        return c_identifier(name)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_COMMENT_TEXT = 200


def comment_text(text: str) -> str:
    """Free text (a model name, a board description, a file name) made safe
    inside a C block comment, a ``#`` comment of a Makefile or CMake file and
    a C string: one line, no ``*/`` or ``/*``, no control characters, no
    quote or backslash, at most MAX_COMMENT_TEXT characters."""
    text = _CONTROL.sub("?", str(text))
    text = text.replace("*/", "*?").replace("/*", "?*").replace("\\", "?").replace('"', "'")
    if len(text) > MAX_COMMENT_TEXT:
        text = text[: MAX_COMMENT_TEXT - 3] + "..."
    return text


def c_int(value: int, ctype: str = "int32_t") -> str:
    """An integer literal valid for ``ctype`` (INT32_MIN cannot be written as
    a plain literal: -2147483648 is unary minus on an out-of-range long)."""
    value = int(value)
    if ctype == "int32_t" and value == -(2**31):
        return "INT32_MIN"
    return str(value)


def c_array_body(values: np.ndarray) -> str:
    """The initializer lines of a flat C array, 16 values a line."""
    flat = np.asarray(values).reshape(-1)
    ctype, lo, hi = _C_TYPES[flat.dtype]
    if flat.size and (flat.min() < lo or flat.max() > hi):
        raise ValueError(f"value out of range for {ctype}")
    items = [c_int(v, ctype) for v in flat.tolist()]
    lines = [
        "    " + ", ".join(items[i : i + _VALUES_PER_LINE]) + ","
        for i in range(0, len(items), _VALUES_PER_LINE)
    ]
    return "\n".join(lines)


def c_type(values: np.ndarray) -> str:
    return _C_TYPES[np.asarray(values).dtype][0]


def c_float_comment(value: float) -> str:
    """A float for documentation comments and macros, round-trippable."""
    return repr(float(value))


_C_DECIMAL_FLOAT = re.compile(r"-?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+(?=e))(?:e[-+]?[0-9]+)?")


def float32_of(value: float) -> np.float32:
    """The float32 nearest ``value`` (ties to even): what C code that
    divides by a model's scale holds."""
    with np.errstate(over="ignore", under="ignore"):
        return np.float32(value)


def c_float32_literal(value: float) -> str:
    """A C float literal (``0.003921569f``) for the float32 nearest ``value``.

    The text is the shortest decimal that gives exactly that float32 both
    when a compiler rounds it straight to float (as GCC and Clang do) and
    when it rounds it to double first: no rounding choice of the compiler
    can change the bits. ValueError for a value whose float32 is not finite."""
    f = float32_of(value)
    if not np.isfinite(f):
        raise ValueError(f"{value!r} has no finite float32")
    for text in (str(f), f"{float(f):.9e}", f"{float(f):.17e}"):
        if _C_DECIMAL_FLOAT.fullmatch(text) and _reads_back(text, f):
            return text + "f"
    raise AssertionError(f"no decimal reads back as {float(f)!r}")  # 17 digits always do


def _reads_back(text: str, f: np.float32) -> bool:
    """``text`` rounds to ``f`` directly, and through double."""
    exact = Fraction(text)
    below, above = (_neighbour(f, direction) for direction in (-np.inf, np.inf))
    middle = Fraction(float(f))
    direct = (below + middle) / 2 < exact < (middle + above) / 2
    return bool(direct and float32_of(float(text)) == f)


def _neighbour(f: np.float32, direction: float) -> Fraction:
    """The next float32 from ``f`` toward ``direction``; past the largest,
    2^128, where rounding to nearest goes to infinity."""
    with np.errstate(over="ignore"):
        step = np.nextafter(f, np.float32(direction))
    return Fraction(2**128) * int(np.sign(direction)) if np.isinf(step) else Fraction(float(step))
