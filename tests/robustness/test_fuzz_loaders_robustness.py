"""Fuzzing every loader of a user-supplied file: each damaged input must end
in a clean, validated load or in exactly one UserError naming the file. Any
other exception (KeyError, struct.error, zipfile errors, RecursionError,
MemoryError, ...) fails the test.

Each test starts from a VALID small file of its kind and applies random
truncation, byte flips, insertions and deletions, or field mutations (a JSON
header field changed, deleted or mistyped; an array replaced by one of
another dtype or shape, or by NaN; a TOML value of another type; IDX header
fields rewritten). ``EDGEGEN_FUZZ_EXAMPLES`` sets the examples per loader
(default 3000); runs are derandomized, so CI sees the same examples.

Also here: explicit regressions for the cases the fuzzing was written for.
"""

from __future__ import annotations

import copy
import gzip
import io
import json
import math
import os
import struct
import sys
import textwrap
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from qgraph_support import tiny_qgraph
import torch
import torch.nn as nn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgegen.compress.artifact import CompressedArtifact, StoredLayer, load_compressed, save_compressed
from edgegen.data.datasets import load_dataset
from edgegen.data.idx import read_idx
from edgegen.errors import UserError
from edgegen.quantize.artifact import load_qgraph, save_qgraph
from edgegen.reference.golden import run_golden
from edgegen.firmware.boards import load_board
from edgegen.jobs.lower import lower
from edgegen.zoo.checkpoints import load_checkpoint, save_checkpoint

EXAMPLES = int(os.environ.get("EDGEGEN_FUZZ_EXAMPLES", "3000"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
)


def expect_clean(load, path: Path, *args, names=None):
    """Run ``load``; a UserError must be one line naming the file."""
    try:
        return load(*args)
    except UserError as exc:
        message = str(exc)
        assert message and "\n" not in message and "\r" not in message, message
        assert (names or path.name) in message, message
        return None


# ------------------------------------------------------------- mutations

TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)  # no lone surrogates
JSON_SCALARS = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, -1, 2, 8, 9, 127, 128, -128, -129, 2**31, 2**31 - 1, 2**63, 10**400]),
    st.floats(allow_nan=True, allow_infinity=True),
    TEXT,
    st.sampled_from(["", "conv", "fc", "double", "single", "QConv2D", "QReshape", "0", "_0",
                     "input_1", "lenet5", "os:abort", "evil.py:f", "a:b:c", "x*/", "1.weight"]),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(TEXT, inner, max_size=3)),
    max_leaves=6,
)


def mutate_bytes(data, raw: bytes) -> bytes:
    """1-4 random truncations, flips, insertions, deletions or overwrites."""
    out = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 4), label="byte edits")):
        kind = data.draw(st.sampled_from(["truncate", "flip", "insert", "delete", "overwrite"]))
        pos = data.draw(st.integers(0, max(len(out) - 1, 0)))
        if kind == "truncate":
            del out[pos:]
        elif kind == "flip" and out:
            out[pos] ^= data.draw(st.integers(1, 255))
        elif kind == "insert":
            out[pos:pos] = data.draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del out[pos : pos + data.draw(st.integers(1, 16))]
        elif kind == "overwrite":
            chunk = data.draw(st.binary(min_size=1, max_size=8))
            out[pos : pos + len(chunk)] = chunk
    return bytes(out)


def pick_container(data, root):
    """A random (container, key) inside a JSON-like tree, by a random walk."""
    node = root
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            return node, None
        key = data.draw(st.sampled_from(keys))
        child = node[key]
        if isinstance(child, (dict, list)) and child and data.draw(st.booleans()):
            node = child
            continue
        return node, key


def mutate_json(data, header: dict) -> dict:
    """1-3 field edits: change (to any JSON value, or a nearby number), delete, duplicate."""
    header = copy.deepcopy(header)
    for _ in range(data.draw(st.integers(1, 3), label="field edits")):
        container, key = pick_container(data, header)
        if key is None:
            continue
        kind = data.draw(st.sampled_from(["replace", "nudge", "delete", "duplicate"]))
        value = container[key]
        if kind == "replace":
            container[key] = data.draw(JSON_VALUES)
        elif kind == "nudge" and isinstance(value, (int, float)) and not isinstance(value, bool):
            container[key] = value + data.draw(st.sampled_from([-1, 1, -2, 2, 0.5, -value]))
        elif kind == "delete":
            del container[key]
        elif kind == "duplicate" and isinstance(container, list):
            container.insert(key, copy.deepcopy(value))
    return header


DTYPES = ["bool", "int8", "uint8", "int16", "int32", "int64", "uint64", "float16", "float32",
          "float64", "complex64", ">f4", ">i4"]


def mutate_array(data, array: np.ndarray) -> np.ndarray | None:
    """Another dtype, shape or values; None to delete it."""
    kind = data.draw(st.sampled_from(["dtype", "shape", "nan", "values", "delete", "empty"]))
    if kind == "dtype":
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # complex to real drops the imaginary part: intended
            return array.astype(data.draw(st.sampled_from(DTYPES)))
    if kind == "shape":
        shape = tuple(data.draw(st.lists(st.integers(0, 5), max_size=4)))
        return np.resize(array, shape) if array.size else np.zeros(shape, array.dtype)
    if kind == "nan":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = array.astype(np.float32 if array.dtype.kind != "f" else array.dtype).copy()
        if out.size:
            out.flat[data.draw(st.integers(0, out.size - 1))] = data.draw(
                st.sampled_from([np.nan, np.inf, -np.inf]))
        return out
    if kind == "values":
        out = array.copy()
        if out.size and out.dtype.kind in "iuf":
            info = np.iinfo(out.dtype) if out.dtype.kind in "iu" else np.finfo(out.dtype)
            out.flat[data.draw(st.integers(0, out.size - 1))] = data.draw(
                st.sampled_from([info.min, info.max, 0, 1, -1 if out.dtype.kind != "u" else 2]))
        return out
    if kind == "empty":
        return np.zeros((0,), array.dtype)
    return None


def write_npz_file(path: Path, header, arrays: dict, raw_header: bytes | None = None) -> None:
    payload = dict(arrays)
    text = raw_header if raw_header is not None else json.dumps(header).encode()
    payload["header"] = np.frombuffer(text, np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **payload)


def read_npz_parts(raw: bytes) -> tuple[dict, dict]:
    with np.load(io.BytesIO(raw)) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return json.loads(arrays.pop("header").tobytes()), arrays


def fuzz_npz(data, path: Path, valid: bytes) -> None:
    """Write ``valid`` damaged at the byte level or in its fields to ``path``."""
    mode = data.draw(st.sampled_from(["bytes", "fields", "arrays", "both", "header-bytes"]))
    if mode == "bytes":
        path.write_bytes(mutate_bytes(data, valid))
        return
    header, arrays = read_npz_parts(valid)
    raw_header = None
    if mode in ("fields", "both"):
        header = mutate_json(data, header)
    if mode in ("arrays", "both"):
        for _ in range(data.draw(st.integers(1, 2))):
            key = data.draw(st.sampled_from(sorted(arrays) + ["extra/array"]))
            changed = mutate_array(data, arrays.get(key, np.zeros(3, np.float32)))
            if changed is None:
                arrays.pop(key, None)
            else:
                arrays[key] = changed
    if mode == "header-bytes":
        raw_header = data.draw(st.sampled_from([
            mutate_bytes(data, json.dumps(header).encode()), b"[1, 2]", b"\xff\xfe", b"", b"null",
            b"[" * 5000 + b"]" * 5000, json.dumps({**header, "format": 3}).encode()]))
    write_npz_file(path, header, arrays, raw_header)


# ---------------------------------------------------------- valid files


def tiny_compressed() -> CompressedArtifact:
    """conv (2 bits) + BatchNorm + fc (3 bits), weights on their codebooks."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(),
                          nn.Linear(2 * 4 * 4, 3))
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    rng = np.random.default_rng(0)
    layers = []
    for name, kind, bits in (("0", "conv", 2), ("4", "fc", 3)):
        shape = tuple(state[f"{name}.weight"].shape)
        codebook = np.array([0, *rng.integers(-127, 128, (1 << bits) - 1)], dtype=np.int8)
        indices = rng.integers(0, 1 << bits, shape).astype(np.int32)
        mask = indices != 0
        scale = 0.01
        weight = (np.float32(scale) * codebook[indices].astype(np.float32)) * mask
        state[f"{name}.weight"] = torch.from_numpy(weight.astype(np.float32))
        layers.append(StoredLayer(name, kind, shape, bits, scale, mask, indices, codebook))
    return CompressedArtifact({"zoo": "lenet5"}, state, tuple(layers), {"spec": {"bits": 3}})


def checkpoint_model() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))


GOOD_BOARD = {
    "name": "fuzzboard", "description": "a board for fuzzing", "cpu": "rv32imac", "arch": "riscv",
    "toolchain": "riscv64-unknown-elf", "toolchain_package": "gcc-riscv64-unknown-elf",
    "cflags": ["-march=rv32imac", "-mabi=ilp32"], "fpu": False,
    "flash_bytes": 65536, "ram_bytes": 16384,
    "memory": {"flash_origin": 0x80000000, "ram_origin": 0x80400000},
    "qemu": {"binary": "qemu-system-riscv32", "package": "qemu-system-misc", "machine": "virt",
             "test_device": 0x100000},
}


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("nan" if value != value else
                                                         ("inf" if value > 0 else "-inf"))
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value if v is not None) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_string(k)} = {toml_value(v)}" for k, v in value.items()
                               if v is not None) + "}"
    return '""'  # None has no TOML form


def toml_string(text: str) -> str:
    """A TOML basic string: JSON's escapes for control characters, other
    characters as they are (JSON's surrogate-pair escapes are not TOML)."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def to_toml(board: dict) -> str:
    lines, tables = [], []
    for key, value in board.items():
        if value is None:
            continue
        if isinstance(value, dict) and key in ("memory", "qemu"):
            tables.append((key, value))
        else:
            lines.append(f"{toml_string(key)} = {toml_value(value)}")
    for name, table in tables:
        lines.append(f"\n[{name}]")
        lines += [f"{toml_string(k)} = {toml_value(v)}" for k, v in table.items() if v is not None]
    return "\n".join(lines) + "\n"


TOML_VALUES = st.one_of(
    JSON_VALUES.filter(lambda v: v is not None),  # None has no TOML form
    st.sampled_from(["$(shell id)", "-O2 -g", "-DX=\"1\"", "a\nb", "x */ y", "/*", "\x00", "é",
                     "-march=rv32imac\n", "arm-none-eabi; rm -rf /", "-", "qemu system",
                     2**32, 2**32 - 1, -1, 0, 2**64, 0x100000]),
)


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    header = bytes([0, 0, type_code, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def fuzz_idx_bytes(data, valid_array: np.ndarray) -> bytes:
    """A valid IDX file, damaged in its bytes or its header fields, maybe gzipped."""
    mode = data.draw(st.sampled_from(["bytes", "fields", "gzip-bytes"]))
    raw = idx_bytes(valid_array)
    if mode == "fields":
        type_code = data.draw(st.sampled_from([0x08, 0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x00, 0x07, 0xFF]))
        dims = list(valid_array.shape)
        for _ in range(data.draw(st.integers(0, 2))):
            edit = data.draw(st.sampled_from(["dim", "drop", "add"]))
            if edit == "dim" and dims:
                i = data.draw(st.integers(0, len(dims) - 1))
                dims[i] = data.draw(st.one_of(st.integers(0, 2**32 - 1), st.sampled_from([0, 1, 27, 29, 2**32 - 1])))
            elif edit == "drop" and dims:
                dims.pop()
            elif edit == "add":
                dims.append(data.draw(st.integers(0, 2**32 - 1)))
        ndim = data.draw(st.sampled_from([len(dims), len(dims), 0, 255, len(dims) + 1]))
        body = valid_array.tobytes()
        body = body[: data.draw(st.integers(0, len(body)))] if data.draw(st.booleans()) else body
        raw = bytes([0, 0, type_code, ndim % 256]) + b"".join(struct.pack(">I", d) for d in dims) + body
    elif mode == "bytes":
        raw = mutate_bytes(data, raw)
    if mode == "gzip-bytes":
        return mutate_bytes(data, gzip.compress(raw))
    return gzip.compress(raw) if data.draw(st.booleans()) else raw


# -------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


# The valid files' bytes, wrapped so that a failure report shows a name, not kilobytes.
class Valid(bytes):
    def __repr__(self) -> str:
        return f"<valid file, {len(self)} bytes>"


@pytest.fixture(scope="module")
def valid_qgraph(work) -> bytes:
    path = work / "valid.qgraph.npz"
    save_qgraph(tiny_qgraph(), path)
    load_qgraph(path)
    return Valid(path.read_bytes())


@pytest.fixture(scope="module")
def valid_compressed(work) -> bytes:
    path = work / "valid.compressed.npz"
    save_compressed(path, tiny_compressed())
    load_compressed(path)
    return Valid(path.read_bytes())


@pytest.fixture(scope="module")
def valid_checkpoint(work) -> bytes:
    path = work / "valid.pt"
    save_checkpoint(checkpoint_model(), path, meta={"model": "fuzz"})
    load_checkpoint(checkpoint_model(), path)
    return Valid(path.read_bytes())


# ------------------------------------------------------------------ fuzz


@FUZZ
@given(data=st.data())
def test_fuzz_qgraph(work, valid_qgraph, data):
    path = work / "model.qgraph.npz"
    fuzz_npz(data, path, valid_qgraph)
    qgraph = expect_clean(load_qgraph, path, path)
    if qgraph is not None:  # what loads is safe for the golden model, planner and emitter
        shape = qgraph.tensor(qgraph.input).shape
        x = np.random.default_rng(0).integers(-128, 128, (2,) + shape).astype(np.int8)
        run_golden(qgraph, x)
        lower(qgraph)  # storage plan, memory plan and C sources


@FUZZ
@given(data=st.data())
def test_fuzz_compressed(work, valid_compressed, data):
    path = work / "compressed.npz"
    fuzz_npz(data, path, valid_compressed)
    modules = set(sys.modules)
    artifact = expect_clean(load_compressed, path, path)
    assert set(sys.modules) <= modules  # loading imports nothing, whatever source says
    if artifact is not None:
        for tensor in artifact.state_dict.values():
            assert tensor.dtype in (torch.float32, torch.int64)


def mutate_state(data, state: dict) -> dict:
    state = dict(state)
    for _ in range(data.draw(st.integers(1, 2))):
        key = data.draw(st.sampled_from(sorted(state) + ["extra"]))
        kind = data.draw(st.sampled_from(["dtype", "shape", "nan", "delete", "not-a-tensor",
                                          "sparse", "view"]))
        tensor = state.get(key)
        if not isinstance(tensor, torch.Tensor):
            tensor = torch.zeros(3)
        if kind == "dtype":
            dtype = data.draw(st.sampled_from([torch.float16, torch.bfloat16, torch.float64, torch.int64,
                                               torch.int32, torch.uint8, torch.bool, torch.complex64]))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # complex to real: intended
                state[key] = tensor.to(dtype)
        elif kind == "shape":
            shape = data.draw(st.lists(st.integers(0, 4), max_size=3))
            state[key] = torch.zeros(shape, dtype=tensor.dtype)
        elif kind == "nan" and tensor.is_floating_point() and tensor.numel() and tensor.layout == torch.strided:
            state[key] = tensor.reshape(-1).index_fill(0, torch.tensor([0]), float("nan")).reshape(tensor.shape)
        elif kind == "delete":
            state.pop(key, None)
        elif kind == "not-a-tensor":
            state[key] = data.draw(st.sampled_from([1, "w", None, [1.0], {"a": 1}]))
        elif kind == "sparse" and tensor.dim() == 2 and tensor.layout == torch.strided:
            state[key] = tensor.to_sparse()
        elif kind == "view" and tensor.dim() == 2 and tensor.layout == torch.strided:
            state[key] = tensor.t().contiguous().t()  # same values, transposed strides
    return state


@FUZZ
@given(data=st.data())
def test_fuzz_checkpoint(work, valid_checkpoint, data):
    path = work / "fuzz.pt"
    mode = data.draw(st.sampled_from(["bytes", "fields", "payload"]))
    if mode == "bytes":
        path.write_bytes(mutate_bytes(data, valid_checkpoint))
    else:
        state = checkpoint_model().state_dict()
        payload = {"format": "edgegen-checkpoint", "version": 1, "meta": {"model": "fuzz"},
                   "state_dict": mutate_state(data, state) if mode == "fields" else state}
        if mode == "payload":
            field = data.draw(st.sampled_from(["format", "version", "meta", "state_dict", "bare"]))
            if field == "bare":
                payload = payload["state_dict"]
            else:
                payload[field] = data.draw(st.sampled_from([None, 2, "x", [1], {"a": torch.zeros(1)}]))
        torch.save(payload, path)
    model = checkpoint_model()
    expect_clean(load_checkpoint, path, model, path)


@FUZZ
@given(data=st.data())
def test_fuzz_board(work, data):
    path = work / "fuzzboard.toml"
    mode = data.draw(st.sampled_from(["bytes", "fields", "fields"]))
    if mode == "bytes":
        path.write_bytes(mutate_bytes(data, to_toml(GOOD_BOARD).encode()))
    else:
        board = copy.deepcopy(GOOD_BOARD)
        for _ in range(data.draw(st.integers(1, 3))):
            container, key = pick_container(data, board)
            if key is None:
                continue
            if data.draw(st.integers(0, 4)) == 0:
                del container[key]
            else:
                container[key] = data.draw(TOML_VALUES)
        path.write_text(to_toml(board), encoding="utf-8", errors="surrogatepass")
    board = expect_clean(load_board, path, path)
    if board is not None:  # what passes is safe to write into Makefiles and C comments
        for text in (board.description, board.cpu):
            assert text.isprintable() and "*/" not in text
        assert all(flag.startswith("-") and "$" not in flag and " " not in flag for flag in board.cflags)


@FUZZ
@given(data=st.data())
def test_fuzz_idx(work, data):
    path = work / "fuzz-idx3-ubyte"
    valid = np.random.default_rng(0).integers(0, 256, (3, 4, 5)).astype(np.uint8)
    path.write_bytes(fuzz_idx_bytes(data, valid))
    expect_clean(read_idx, path, path)


def write_dataset(folder: Path, n_train: int = 5, n_test: int = 3) -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    files = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        files[f"{split}-images-idx3-ubyte"] = rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)
        files[f"{split}-labels-idx1-ubyte"] = rng.integers(0, 10, n).astype(np.uint8)
    return files


@FUZZ
@given(data=st.data())
def test_fuzz_dataset_folder(work, data):
    folder = work / "dataset"
    folder.mkdir(exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    arrays = write_dataset(folder)
    target = data.draw(st.sampled_from(sorted(arrays)))
    for name, array in arrays.items():
        if name == target:
            edit = data.draw(st.sampled_from(["damage", "damage", "delete", "other-array"]))
            if edit == "delete":
                continue
            if edit == "other-array":
                array = data.draw(st.sampled_from([
                    np.full(array.shape, 10, np.uint8), array[:-1], np.zeros((5, 27, 28), np.uint8),
                    np.zeros((5, 28, 28), np.int8), np.zeros((0,) + array.shape[1:], np.uint8)]))
                raw = idx_bytes(array, 0x09 if array.dtype == np.int8 else 0x08)
            else:  # already gzipped or not, at random
                (folder / name).write_bytes(fuzz_idx_bytes(data, array))
                continue
        else:
            raw = idx_bytes(array)
        gz = data.draw(st.booleans())
        (folder / (name + (".gz" if gz else ""))).write_bytes(gzip.compress(raw) if gz else raw)
    expect_clean(load_dataset, folder, folder, names=str(folder))


# ----------------------------------------------------------- regressions


def test_board_that_is_not_utf8(tmp_path):
    path = tmp_path / "b.toml"
    path.write_bytes(to_toml({**GOOD_BOARD, "name": "b"}).encode().replace(b"fuzzing", b"\xff\xfe"))
    with pytest.raises(UserError, match=rf"board file {path} is not UTF-8 text \(byte 0xff .*save it as UTF-8"):
        load_board(path)


@pytest.mark.parametrize("field, value, pattern", [
    ("toolchain", "arm-none-eabi; rm -rf ~", "field 'toolchain' must be a name of letters"),
    ("cflags", ["-mthumb", "-D$(shell id)"], "field 'cflags' entry '-D\\$\\(shell id\\)' is not one compiler flag"),
    ("cflags", ["-mthumb -O0"], "field 'cflags' entry"),
    ("cflags", ["mthumb"], "field 'cflags' entry"),
    ("description", "line one\nline two", "field 'description' must be one line"),
    ("description", "x */ int evil; /*", "field 'description' must not contain"),
    ("cpu", "x" * 201, "field 'cpu' must be one line of 1 to 200"),
    ("flash_bytes", 2**40, "field 'flash_bytes' must be a positive integer of at most 2\\^32"),
])
def test_board_values_that_reach_generated_files(tmp_path, field, value, pattern):
    path = tmp_path / "fuzzboard.toml"
    path.write_text(to_toml({**GOOD_BOARD, field: value}))
    with pytest.raises(UserError, match=pattern):
        load_board(path)


@pytest.mark.parametrize("field, value", [("binary", "qemu-system-riscv32 -S"), ("machine", "virt,x=$(id)"),
                                          ("package", "qemu\tmisc"), ("test_device", 2**32)])
def test_board_qemu_values(tmp_path, field, value):
    path = tmp_path / "fuzzboard.toml"
    path.write_text(to_toml({**GOOD_BOARD, "qemu": {**GOOD_BOARD["qemu"], field: value}}))
    with pytest.raises(UserError, match=f"field 'qemu.{field}'"):
        load_board(path)


def rewrite_npz(src: bytes, path: Path, header_change=None, array_change=None) -> None:
    header, arrays = read_npz_parts(src)
    if header_change:
        header_change(header)
    if array_change:
        array_change(arrays)
    write_npz_file(path, header, arrays)


@pytest.mark.parametrize("scale", [float("nan"), float("inf"), 0.0, -0.01, "0.01", True])
def test_compressed_scale_must_be_finite_and_positive(work, valid_compressed, tmp_path, scale):
    path = tmp_path / "c.npz"
    rewrite_npz(valid_compressed, path, lambda h: h["layers"][0].update(scale=scale))
    with pytest.raises(UserError, match=rf"{path} is a corrupt compressed model: layers\[0\] \('0'\): 'scale' must be"):
        load_compressed(path)


@pytest.mark.parametrize("key, dtype", [("0.weight", np.float16), ("0.weight", np.float64),
                                        ("0.bias", np.complex64), ("4.bias", np.int32)])
def test_compressed_state_dtype(valid_compressed, tmp_path, key, dtype):
    path = tmp_path / "c.npz"

    def change(arrays):
        arrays[f"state/{key}"] = arrays[f"state/{key}"].astype(dtype)
    rewrite_npz(valid_compressed, path, array_change=change)
    with pytest.raises(UserError, match=f"state '{key}' is {np.dtype(dtype)}; edgegen stores float32"):
        load_compressed(path)


def test_compressed_state_nan(valid_compressed, tmp_path):
    path = tmp_path / "c.npz"

    def change(arrays):
        arrays["state/1.running_var"] = np.full(2, np.nan, np.float32)
    rewrite_npz(valid_compressed, path, array_change=change)
    with pytest.raises(UserError, match="state '1.running_var' holds NaN"):
        load_compressed(path)


@pytest.mark.parametrize("change, pattern", [
    (lambda h: h["layers"][0].update(kind="lstm"), "'kind' must be one of conv, fc"),
    (lambda h: h["layers"][0].update(bits=9), "'bits' must be an integer in 1..8"),
    (lambda h: h["layers"][0].update(weight_shape=[2, 1, 3, 4]), r"'weight_shape' is \(2, 1, 3, 4\) but its weight"),
    (lambda h: h.update(state_keys=h["state_keys"][1:]), "arrays the header does not describe"),
    (lambda h: h.update(source={"zoo": "vgg"}), "names zoo model 'vgg'"),
    (lambda h: h.update(source={"factory": "not a spec"}), "is not MODULE:FACTORY"),
    (lambda h: h.update(source={"zoo": "lenet5", "factory": "a:b"}), "'source' must be"),
    (lambda h: h.update(metadata=[1]), "'metadata' must be an object"),
])
def test_compressed_header_fields(valid_compressed, tmp_path, change, pattern):
    path = tmp_path / "c.npz"
    rewrite_npz(valid_compressed, path, change)
    with pytest.raises(UserError, match=f"{path} is a corrupt compressed model: .*{pattern}"):
        load_compressed(path)


def test_compressed_layer_named_twice(valid_compressed, tmp_path):
    path = tmp_path / "c.npz"

    def same_arrays(arrays):
        for name in ("mask", "indices", "codebook_q"):
            arrays[f"layer/1/{name}"] = arrays[f"layer/0/{name}"]
    rewrite_npz(valid_compressed, path, lambda h: h["layers"].__setitem__(1, h["layers"][0]), same_arrays)
    with pytest.raises(UserError, match="layer names repeat"):
        load_compressed(path)


@pytest.mark.parametrize("array, value, pattern", [
    ("layer/0/mask", lambda a: a.astype(np.uint8), "mask must be bool"),
    ("layer/0/indices", lambda a: a.astype(np.float32), "indices must be integers"),
    ("layer/0/indices", lambda a: np.full_like(a, 4), "codebook index is outside 0..3"),
    ("layer/0/codebook_q", lambda a: a.astype(np.int16), "codebook must be int8 with 2\\^2 entries"),
    ("layer/0/codebook_q", lambda a: np.array([1, 2, 3, 4], np.int8), "slot 0 = 0"),
])
def test_compressed_layer_arrays(valid_compressed, tmp_path, array, value, pattern):
    path = tmp_path / "c.npz"

    def change(arrays):
        arrays[array] = value(arrays[array])
    rewrite_npz(valid_compressed, path, array_change=change)
    with pytest.raises(UserError, match=pattern):
        load_compressed(path)


EVIL = textwrap.dedent("""
    from pathlib import Path
    Path(__file__).with_name("EVIL_RAN").write_text("imported")

    def f():
        Path(__file__).with_name("EVIL_RAN").write_text("called")
""")


class _Audit:
    """Records every file opened and module imported while ``active``
    (audit hooks cannot be removed, so one hook is installed once)."""

    active = False
    events: list = []

    @classmethod
    def hook(cls, event, args):
        if cls.active and event in ("open", "import"):
            cls.events.append((event, str(args[0])))


sys.addaudithook(_Audit.hook)


@pytest.mark.parametrize("factory", ["os:abort", "evil.py:f", "evil:f", "os.path:join"])
def test_source_in_a_compressed_artifact_is_data(valid_compressed, tmp_path, monkeypatch, factory):
    (tmp_path / "evil.py").write_text(EVIL)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    path = tmp_path / "c.npz"
    rewrite_npz(valid_compressed, path, lambda h: h.update(source={"factory": factory}))
    modules = set(sys.modules)
    _Audit.events.clear()
    _Audit.active = True
    try:
        artifact = load_compressed(path)
    finally:
        _Audit.active = False
    assert artifact.source == {"factory": factory}
    assert set(sys.modules) == modules
    assert not [e for e in _Audit.events if e[0] == "import"]
    opened = [name for event, name in _Audit.events if event == "open"]
    assert opened and all(Path(name).name == "c.npz" for name in opened), opened
    assert not (tmp_path / "EVIL_RAN").exists()


def test_qgraph_with_a_wrong_array_shape(valid_qgraph, tmp_path):
    path = tmp_path / "model.qgraph.npz"

    def change(arrays):
        arrays["0/weight"] = np.zeros((2, 3, 3, 2), np.int8)
    rewrite_npz(valid_qgraph, path, array_change=change)
    with pytest.raises(UserError, match=rf"{path} is inconsistent \(node 0 .*takes 2 input channels"):
        load_qgraph(path)


def test_qgraph_with_a_wrong_input_shape(valid_qgraph, tmp_path):
    path = tmp_path / "model.qgraph.npz"
    rewrite_npz(valid_qgraph, path, lambda h: h["tensors"][0].update(shape=[8, 8, 1]))
    with pytest.raises(UserError, match=rf"{path} is inconsistent .*window arithmetic gives \(8, 8, 2\)"):
        load_qgraph(path)


def test_qgraph_header_that_is_not_an_object(valid_qgraph, tmp_path):
    path = tmp_path / "model.qgraph.npz"
    _, arrays = read_npz_parts(valid_qgraph)
    write_npz_file(path, None, arrays, raw_header=b"[1, 2, 3]")
    with pytest.raises(UserError, match="the header is a JSON list, not an object"):
        load_qgraph(path)


def test_zip_bomb_is_refused_before_reading(tmp_path, monkeypatch):
    from edgegen import npz_file

    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("big.npy", "w", force_zip64=True) as f:
            chunk = bytes(1 << 20)
            for _ in range(8):
                f.write(chunk)
    monkeypatch.setattr(npz_file, "MAX_ARRAY_BYTES", 4 << 20)
    with pytest.raises(UserError, match=r"declares 8388608 bytes of arrays, more than edgegen's limit of 4 MiB"):
        load_qgraph(path)


def test_npy_header_declaring_a_huge_shape(valid_qgraph, tmp_path):
    header, arrays = read_npz_parts(valid_qgraph)
    path = tmp_path / "huge.npz"
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|i1", "fortran_order": False, "shape": (10**13,)})
    npy = buf.getvalue() + bytes(4)
    write_npz_file(path, header, arrays)
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("huge.npy", npy)
    with pytest.raises(UserError, match="declares shape .*10000000000000"):
        load_qgraph(path)


def test_random_bytes_are_not_a_pickle(tmp_path):
    path = tmp_path / "random.pt"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(UserError) as info:
        load_checkpoint(checkpoint_model(), path)
    message = str(info.value)
    assert "is not a readable PyTorch weights file (corrupt, truncated, or not saved by torch.save)" in message
    assert "pickled Python objects" not in message


def test_a_pickled_module_is_named_as_such(tmp_path):
    path = tmp_path / "whole.pt"
    torch.save(checkpoint_model(), path)
    with pytest.raises(UserError, match=r"holds pickled Python objects .* save model.state_dict\(\) instead"):
        load_checkpoint(checkpoint_model(), path)


@pytest.mark.parametrize("dtype", [torch.float16, torch.int64, torch.complex64, torch.float64])
def test_checkpoint_dtype_is_not_converted(tmp_path, dtype):
    path = tmp_path / "c.pt"
    state = checkpoint_model().state_dict()
    state["0.weight"] = state["0.weight"].to(dtype)
    torch.save(state, path)
    with pytest.raises(UserError, match=rf"0.weight is {dtype} in the checkpoint but torch.float32 in the model"
                                        r".*torch.save\(model.float\(\).state_dict\(\), PATH\)"):
        load_checkpoint(checkpoint_model(), path)


def test_huge_checkpoint_is_refused_before_reading(tmp_path):
    path = tmp_path / "big.pt"
    with open(path, "wb") as f:
        f.truncate(64 << 20)  # sparse: costs no disk
    with pytest.raises(UserError, match="is 67108864 bytes, but the model's weights take"):
        load_checkpoint(checkpoint_model(), path)


def test_idx_with_absurd_dimensions_allocates_nothing(tmp_path):
    path = tmp_path / "x-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(bytes([0, 0, 8, 3]) + struct.pack(">III", 2**32 - 1, 2**32 - 1, 28)))
    with pytest.raises(UserError, match="more than edgegen's limit of 1024 MiB"):
        read_idx(path)


def test_idx_gzip_bomb_after_the_data_is_not_inflated(tmp_path):
    path = tmp_path / "labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.arange(5, dtype=np.uint8)) + bytes(64 << 20)))
    with pytest.raises(UserError, match=r"is corrupt: shape \(5,\) needs 13 bytes, the file has more than"):
        read_idx(path)
