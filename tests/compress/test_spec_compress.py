"""Compression specs: validation, JSON round trip, paper defaults."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgegen.compress.spec import (
    SPEC_VERSION,
    CompressSpec,
    FilterPruneSpec,
    KMeansInit,
    LayerSpec,
    PruneSpec,
    ShareSpec,
    default_spec,
)
from edgegen.zoo.models import lenet5, lenet300

prune_specs = st.one_of(
    st.none(),
    st.builds(PruneSpec, quality=st.floats(0, 5, allow_nan=False)),
    st.builds(PruneSpec, sparsity=st.floats(0, 0.999, allow_nan=False)),
)
share_specs = st.one_of(
    st.none(), st.builds(ShareSpec, bits=st.integers(1, 8), init=st.sampled_from(list(KMeansInit)))
)
layer_names = st.text("abcdefgh0123456789._", min_size=1, max_size=8)
fractions = st.floats(0, 0.999, allow_nan=False)
filter_specs = st.one_of(
    st.none(),
    st.builds(FilterPruneSpec, ratios=st.dictionaries(layer_names, fractions, min_size=1, max_size=4),
              finetune_epochs=st.integers(0, 5)),
    st.builds(FilterPruneSpec, params=fractions, finetune_epochs=st.integers(0, 5)),
)
compress_specs = st.builds(
    CompressSpec,
    layers=st.dictionaries(layer_names, st.builds(LayerSpec, prune=prune_specs, share=share_specs), max_size=5),
    prune_steps=st.integers(1, 10),
    retrain_epochs=st.integers(0, 10),
    finetune_epochs=st.integers(0, 10),
    seed=st.integers(0, 2**31),
    filters=filter_specs,
)


@given(compress_specs)
def test_json_round_trip_is_exact(spec):
    assert CompressSpec.from_json(spec.to_json()) == spec
    assert CompressSpec.from_json(spec.to_json(indent=None)) == spec


def test_layers_given_as_a_mapping_are_stored_as_pairs_in_order():
    layer = LayerSpec(share=ShareSpec(bits=5))
    spec = CompressSpec(layers={"fc2": layer, "fc1": layer})
    assert spec.layers == (("fc2", layer), ("fc1", layer))
    assert hash(spec) == hash(CompressSpec(layers=(("fc2", layer), ("fc1", layer))))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: PruneSpec(), "exactly one"),
        (lambda: PruneSpec(quality=1.0, sparsity=0.5), "exactly one"),
        (lambda: PruneSpec(sparsity=1.0), r"sparsity must be in \[0, 1\)"),
        (lambda: PruneSpec(sparsity=-0.1), "sparsity"),
        (lambda: PruneSpec(quality=-1.0), "quality"),
        (lambda: PruneSpec(quality=float("nan")), "quality"),
        (lambda: ShareSpec(bits=0), "bits"),
        (lambda: ShareSpec(bits=9), "bits"),
        (lambda: ShareSpec(bits=True), "bits"),
        (lambda: ShareSpec(bits=4, init="linear"), "KMeansInit"),
        (lambda: LayerSpec(prune=ShareSpec(bits=4)), "PruneSpec"),
        (lambda: CompressSpec(layers={"fc1": PruneSpec(sparsity=0.5)}), "LayerSpec"),
        (lambda: CompressSpec(layers=[("fc1", LayerSpec()), ("fc1", LayerSpec())]), "twice"),
        (lambda: CompressSpec(layers={}, prune_steps=0), "prune_steps"),
        (lambda: CompressSpec(layers={}, retrain_epochs=-1), "retrain_epochs"),
        (lambda: CompressSpec(layers={}, version=2), "version 2"),
        (lambda: FilterPruneSpec(), "exactly one of ratios and params"),
        (lambda: FilterPruneSpec(ratios={"conv1": 0.5}, params=0.3), "exactly one"),
        (lambda: FilterPruneSpec(ratios={"conv1": 1.0}), r"ratios\['conv1'\] must be in \[0, 1\)"),
        (lambda: FilterPruneSpec(ratios={"": 0.5}), "non-empty strings"),
        (lambda: FilterPruneSpec(ratios=[("a", 0.1), ("a", 0.2)]), "names layer 'a' twice"),
        (lambda: FilterPruneSpec(ratios=[0.5]), "pairs or a mapping"),
        (lambda: FilterPruneSpec(params=True), r"params must be in \[0, 1\)"),
        (lambda: FilterPruneSpec(params=0.5, finetune_epochs=-1), "finetune_epochs"),
        (lambda: CompressSpec(layers={}, filters={"params": 0.5}), "FilterPruneSpec or None"),
    ],
)
def test_bad_values_raise_a_clear_value_error(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def _plain():
    return json.loads(
        CompressSpec(layers={"fc1": LayerSpec(PruneSpec(sparsity=0.9), ShareSpec(bits=5))}).to_json()
    )


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda p: p.update(version=SPEC_VERSION + 1), "version 2 is not supported"),
        (lambda p: p.pop("version"), "lacks version"),
        (lambda p: p.update(colour="red"), "unknown keys colour"),
        (lambda p: p.update(format="something"), "not a compress spec"),
        (lambda p: p["layers"][0]["share"].update(init="kmeans++"), "init must be one of"),
        (lambda p: p["layers"][0]["share"].update(bits=12), "bits"),
        (lambda p: p["layers"][0]["prune"].update(sparsity=1.5), "sparsity"),
        (lambda p: p["layers"][0].update(prune=[0.5]), "JSON object"),
        (lambda p: p["layers"][0].pop("name"), "lacks name"),
        (lambda p: p.update(seed=-3), "seed"),
        (lambda p: p.update(layers={}), "must be a list"),
        (lambda p: p.update(filters={"ratio": {"fc1": 0.5}}), "filters has unknown keys ratio"),
        (lambda p: p.update(filters={"ratios": [0.5]}), "ratios must be an object"),
        (lambda p: p.update(filters={"params": 1.5}), r"params must be in \[0, 1\)"),
        (lambda p: p.update(filters={}), "exactly one of ratios and params"),
    ],
)
def test_from_json_rejects_bad_documents(edit, message):
    plain = _plain()
    edit(plain)
    with pytest.raises(ValueError, match=message):
        CompressSpec.from_json(json.dumps(plain))


def test_from_json_rejects_text_that_is_not_json():
    with pytest.raises(ValueError, match="not valid JSON"):
        CompressSpec.from_json("{version: 1")


def test_default_spec_uses_the_paper_bits_per_layer_kind():
    spec = default_spec(lenet5(), sparsity={"conv2": 0.88, "fc1": 0.92})
    layers = spec.layer_dict()
    assert list(layers) == ["conv1", "conv2", "fc1", "fc2"]
    assert [layers[n].share.bits for n in layers] == [8, 8, 5, 5]
    assert all(layer.share.init is KMeansInit.LINEAR for layer in layers.values())
    assert layers["conv1"].prune is None
    assert layers["fc1"].prune == PruneSpec(sparsity=0.92)


def test_default_spec_checks_layer_names():
    with pytest.raises(ValueError, match="fc9"):
        default_spec(lenet300(), sparsity={"fc9": 0.5})


def test_filter_pruning_reads_from_json_as_written():
    text = json.dumps({"version": SPEC_VERSION, "layers": [],
                       "filters": {"ratios": {"conv1": 0.25, "conv2": 0.5}, "finetune_epochs": 2}})
    spec = CompressSpec.from_json(text)
    assert spec.filters == FilterPruneSpec(ratios=(("conv1", 0.25), ("conv2", 0.5)), finetune_epochs=2)
    assert spec.filters.ratio_dict() == {"conv1": 0.25, "conv2": 0.5}
    assert CompressSpec.from_json(_plain_text()).filters is None  # a spec without it


def _plain_text():
    return json.dumps(_plain())


def test_check_model_names_missing_and_weightless_layers():
    model = lenet300()
    CompressSpec(layers={"fc1": LayerSpec()}).check_model(model)
    with pytest.raises(ValueError, match="lacks.*fc1, fc2, fc3"):
        CompressSpec(layers={"conv1": LayerSpec()}).check_model(model)
    with pytest.raises(ValueError, match="ReLU"):
        CompressSpec(layers={"relu1": LayerSpec()}).check_model(model)
    with pytest.raises(ValueError, match="names layer 'conv9'"):
        CompressSpec(layers={}, filters=FilterPruneSpec(ratios={"conv9": 0.5})).check_model(model)
