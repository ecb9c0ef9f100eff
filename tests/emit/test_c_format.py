import numpy as np
import pytest

from edgegen.emit.c_format import c_array_body, c_identifier, c_int


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
