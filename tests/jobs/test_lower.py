"""model.storage.json: the storage choice a deploy folder records, read back
by `edgegen verify` as data (validated, never trusted)."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgegen.encode.storage_plan import FormatRequest
from edgegen.errors import UserError
from edgegen.jobs.lower import StorageChoice, check_request, load_choice, save_choice
from qgraph_support import tiny_qgraph

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)
WORDS = st.sampled_from(["auto", "dense", "codebook", "sparse", "huffman", "size", "speed",
                         "balanced", "zip", ""])


def test_a_choice_round_trips(tmp_path):
    choice = StorageChoice(FormatRequest("sparse", {"fc1": "huffman"}), "size")
    save_choice(choice, tmp_path / "s.json")
    assert load_choice(tmp_path / "s.json") == choice


@settings(derandomize=True, database=None, deadline=None, max_examples=400)
@given(data=st.one_of(JSON, st.fixed_dictionaries(
    {"format": WORDS | JSON, "layers": st.dictionaries(st.text(max_size=5), WORDS | JSON,
                                                         max_size=3) | JSON,
     "optimize": WORDS | JSON})))
def test_any_json_is_a_choice_or_one_clear_error(data, tmp_path_factory):
    path = tmp_path_factory.mktemp("c") / "model.storage.json"
    path.write_text(json.dumps(data))
    try:
        choice = load_choice(path)
    except UserError as error:
        assert str(path) in str(error) and "\n" not in str(error)
        return
    assert choice.optimize in ("size", "speed", "balanced")
    assert isinstance(choice.request, FormatRequest)


def test_unreadable_and_missing_files_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="is missing"):
        load_choice(tmp_path / "absent.json")
    (tmp_path / "bad.json").write_bytes(b"\xff{")
    with pytest.raises(UserError, match="cannot read"):
        load_choice(tmp_path / "bad.json")


def test_a_recorded_layer_the_model_lacks_is_a_user_error():
    with pytest.raises(UserError, match="not a weight layer"):
        check_request(tiny_qgraph(), FormatRequest("auto", {"fc9": "sparse"}))
