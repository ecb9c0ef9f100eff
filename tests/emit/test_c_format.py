import numpy as np
import pytest

from edgegen.emit.c_format import (
    c_array_body,
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
