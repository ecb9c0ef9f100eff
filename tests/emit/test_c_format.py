from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgegen.host.compiler import compile_shared_library, load_library

from edgegen.emit.c_format import (
    c_array_body,
    c_float32_literal,
    c_identifier,
    c_int,
    c_prefix,
    check_c_name,
    comment_text,
)


@pytest.mark.parametrize("text, ident", [
    ("LeNet-5", "lenet_5"), ("lenet300", "lenet300"), ("5net", "m_5net"),
    ("my.model:factory", "my_model_factory"), ("int", "int_"), ("__a__b", "a_b"),
])
def test_c_identifier(text, ident):
    assert c_identifier(text) == ident


def test_c_identifier_rejects_empty():
    with pytest.raises(ValueError):
        c_identifier("---")


def test_int32_min_is_spelled_as_the_macro():
    assert c_int(-(2**31)) == "INT32_MIN"
    assert c_int(-(2**31) + 1) == "-2147483647"
    assert c_int(-128, "int8_t") == "-128"


def test_array_body_lines_and_values():
    body = c_array_body(np.arange(-10, 10, dtype=np.int8))
    lines = body.splitlines()
    assert len(lines) == 2 and all(line.startswith("    ") and line.endswith(",") for line in lines)
    values = [int(v) for v in body.replace("\n", " ").replace(",", " ").split()]
    assert values == list(range(-10, 10))
    assert "INT32_MIN" in c_array_body(np.array([-(2**31), 5], dtype=np.int32))


def test_array_body_rejects_unsupported_dtype():
    with pytest.raises(KeyError):
        c_array_body(np.zeros(3, dtype=np.float32))


@pytest.mark.parametrize("name", ["lenet5", "MyNet", "_private", "a" * 40])
def test_check_c_name_accepts_identifiers_as_given(name):
    assert check_c_name(name) == name
    assert c_prefix(name) == name


@pytest.mark.parametrize("name, why", [
    ("a*/b", "not a C identifier"), ("9lives", "not a C identifier"), ("", "not a C identifier"),
    ("x y", "not a C identifier"), ("a" * 41, "41 characters"), ("int", "reserved"),
    ("__x", "reserved"), ("_Bool2", "reserved"), ("lenet\n", "not a C identifier"),
])
def test_check_c_name_refuses(name, why):
    with pytest.raises(ValueError, match=why):
        check_c_name(name)


def test_c_prefix_makes_an_identifier_from_free_text():
    assert c_prefix("LeNet-5") == "lenet_5"


@pytest.mark.parametrize("text", ['x*/\n#include "/etc/hostname"\n/*', "a */ b /* c", "tab\there",
                                  "back\\slash \"quoted\"", "\x00\x1b[31m", "é ünïcode"])
def test_comment_text_is_one_closed_line(text):
    safe = comment_text(text)
    assert "*/" not in safe and "/*" not in safe and "\\" not in safe and '"' not in safe
    assert safe.isprintable() and "\n" not in safe


def test_comment_text_keeps_plain_text_and_bounds_length():
    assert comment_text("LeNet-5 on fashion-mnist") == "LeNet-5 on fashion-mnist"
    assert len(comment_text("x" * 1000)) == 200


@pytest.mark.parametrize("value, literal", [
    (1 / 255, "0.003921569f"), (0.0078125, "0.0078125f"), (1.0, "1.0f"), (0.1, "0.1f"),
    (1 / 3, "0.33333334f"), (1e-45, "1e-45f"), (-0.0, "-0.0f"), (123456789.0, "1.2345679e+08f"),
])
def test_float32_literal_is_the_shortest_round_trip(value, literal):
    assert c_float32_literal(value) == literal


@pytest.mark.parametrize("value", [float("inf"), float("nan"), 1e39])
def test_float32_literal_refuses_what_has_no_finite_float32(value):
    with pytest.raises(ValueError, match="no finite float32"):
        c_float32_literal(value)


def nearest_float32(exact: Fraction) -> np.float32:
    """The float32 nearest a rational, by comparing the neighbours."""
    guess = np.float32(float(exact))
    with np.errstate(over="ignore"):
        around = [guess, np.nextafter(guess, np.float32(-np.inf)),
                  np.nextafter(guess, np.float32(np.inf))]
    return min((f for f in around if np.isfinite(f)), key=lambda f: abs(Fraction(float(f)) - exact))


@settings(derandomize=True, database=None, deadline=None, max_examples=500)
@given(st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_float32_literal_reads_back_exactly_by_either_rounding(value):
    literal = c_float32_literal(value)
    text = literal[:-1]
    assert literal.endswith("f") and ("." in text or "e" in text)  # a C floating constant
    f = np.float32(value)
    assert nearest_float32(Fraction(text)) == f  # rounded straight to float
    assert np.float32(float(text)) == f  # rounded to double first


def test_float32_literals_compile_to_the_same_bits(tmp_path):
    values = np.random.default_rng(0).standard_normal(200).astype(np.float32) * np.float32(10.0) ** \
        np.random.default_rng(1).integers(-40, 38, size=200).astype(np.float32)
    values = np.concatenate([values, np.array([1 / 255, 2 / 255, 1e-45, 3.4028235e38], np.float32)])
    values = values[np.isfinite(values)]
    body = ", ".join(c_float32_literal(float(v)) for v in values)
    (tmp_path / "lit.c").write_text(
        "#include <string.h>\n"
        f"static const float lits[{len(values)}] = {{{body}}};\n"
        "void get_lits(float *out);\n"
        "void get_lits(float *out) { memcpy(out, lits, sizeof lits); }\n")
    library = compile_shared_library([tmp_path / "lit.c"], [], tmp_path / "liblit.so")
    ffi, lib = load_library(library, "void get_lits(float *out);")
    out = np.zeros(len(values), np.float32)
    lib.get_lits(ffi.from_buffer("float[]", out))
    np.testing.assert_array_equal(out.view(np.uint32), values.view(np.uint32))
