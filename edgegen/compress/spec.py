"""What to compress and how: frozen, validated, versioned specs.

One frozen dataclass per method (``PruneSpec``, ``ShareSpec``), grouped per
layer (``LayerSpec``) and per model (``CompressSpec``); filter pruning, which
changes the architecture before the per-layer methods run, is one
model-wide ``FilterPruneSpec``. A layer is named by its
module path in the model (``"fc1"``, ``"features.0"``). Specs are plain
values: ``CompressSpec.to_json()`` / ``CompressSpec.from_json()`` round-trip
them exactly, and every constructor validates its values, raising
``ValueError`` with a message that names the field and the allowed range.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Iterable

from torch import nn

SPEC_FORMAT = "edgegen.compress-spec"
SPEC_VERSION = 1
MAX_SHARE_BITS = 8  # 2^8 - 1 centroids still fit the 255 values of the int8 grid

# Deep Compression's choices: 8-bit codebooks for conv layers, 5-bit for fully connected.
PAPER_CONV_BITS = 8
PAPER_FC_BITS = 5

# Fraction of weights pruned per layer in Han et al. 2015 (Table 1 and 2), by
# the layer names of edgegen.zoo's models.
PAPER_SPARSITY: dict[str, dict[str, float]] = {
    "lenet300": {"fc1": 0.92, "fc2": 0.91, "fc3": 0.74},
    "lenet5": {"conv1": 0.34, "conv2": 0.88, "fc1": 0.92, "fc2": 0.81},
}


class KMeansInit(enum.Enum):
    """Where k-means starts (Deep Compression §3.2 compares the three)."""

    LINEAR = "linear"  # evenly spaced between min and max: the paper's choice
    DENSITY = "density"  # evenly spaced in the CDF of the weights
    RANDOM = "random"  # distinct weights drawn with the spec's seed (Forgy)


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class PruneSpec:
    """Magnitude pruning of one layer; set exactly one of the two fields.

    ``quality``: prune the weights with ``|w| <= quality * std(w)`` (Han et
    al. 2015), ``std`` over all the layer's weights before pruning.
    ``sparsity``: prune this fraction of the weights, the smallest first.
    """

    quality: float | None = None
    sparsity: float | None = None

    def __post_init__(self) -> None:
        if (self.quality is None) == (self.sparsity is None):
            raise ValueError(
                f"PruneSpec needs exactly one of quality and sparsity "
                f"(got quality={self.quality!r}, sparsity={self.sparsity!r})"
            )
        if self.quality is not None and not (
            _is_real(self.quality) and math.isfinite(self.quality) and self.quality >= 0
        ):
            raise ValueError(f"PruneSpec.quality must be a finite number >= 0, got {self.quality!r}")
        if self.sparsity is not None and not (
            _is_real(self.sparsity) and 0.0 <= self.sparsity < 1.0
        ):
            raise ValueError(f"PruneSpec.sparsity must be in [0, 1), got {self.sparsity!r}")


@dataclass(frozen=True)
class ShareSpec:
    """k-means weight sharing of one layer with a codebook of ``2^bits`` slots.

    Slot 0 is reserved and holds 0 (edgegen.encode's filler slot); the other
    ``2^bits - 1`` slots are the centroids the surviving weights share.
    """

    bits: int
    init: KMeansInit = KMeansInit.LINEAR

    def __post_init__(self) -> None:
        if not (_is_int(self.bits) and 1 <= self.bits <= MAX_SHARE_BITS):
            raise ValueError(f"ShareSpec.bits must be an integer in 1..{MAX_SHARE_BITS}, got {self.bits!r}")
        if not isinstance(self.init, KMeansInit):
            raise ValueError(f"ShareSpec.init must be a KMeansInit, got {self.init!r}")

    @property
    def clusters(self) -> int:
        """Centroids k-means places: every slot but the reserved slot 0."""
        return (1 << self.bits) - 1


@dataclass(frozen=True)
class FilterPruneSpec:
    """Filter pruning (Li et al. 2017, edgegen.compress.filter_prune); set
    exactly one of ``ratios`` and ``params``.

    ``ratios``: ``(layer, fraction)`` pairs or a mapping: the fraction of
    the filters of each named Conv2d or Linear (and of the layers joined to
    it) removed, smallest L1 norm first. ``params``: the fraction of the
    model's parameters to remove overall, by one filter ratio for every
    prunable layer. ``finetune_epochs``: training epochs right after.
    """

    ratios: tuple[tuple[str, float], ...] = ()
    params: float | None = None
    finetune_epochs: int = 0

    def __post_init__(self) -> None:
        items = self.ratios.items() if isinstance(self.ratios, Mapping) else self.ratios
        try:
            ratios = tuple((name, ratio) for name, ratio in items)
        except (TypeError, ValueError):
            raise ValueError(f"FilterPruneSpec.ratios must be (layer, fraction) pairs or a mapping, "
                             f"got {self.ratios!r}") from None
        object.__setattr__(self, "ratios", ratios)
        if bool(ratios) == (self.params is not None):
            raise ValueError(f"FilterPruneSpec needs exactly one of ratios and params (got "
                             f"ratios={dict(ratios)!r}, params={self.params!r})")
        names = [name for name, _ in ratios]
        for name, ratio in ratios:
            if not isinstance(name, str) or not name:
                raise ValueError(f"FilterPruneSpec.ratios: layer names must be non-empty strings, got {name!r}")
            if names.count(name) > 1:
                raise ValueError(f"FilterPruneSpec.ratios names layer {name!r} twice")
            if not (_is_real(ratio) and 0.0 <= ratio < 1.0):
                raise ValueError(f"FilterPruneSpec.ratios[{name!r}] must be in [0, 1), got {ratio!r}")
        if self.params is not None and not (_is_real(self.params) and 0.0 <= self.params < 1.0):
            raise ValueError(f"FilterPruneSpec.params must be in [0, 1), got {self.params!r}")
        if not (_is_int(self.finetune_epochs) and self.finetune_epochs >= 0):
            raise ValueError(f"FilterPruneSpec.finetune_epochs must be an integer >= 0, "
                             f"got {self.finetune_epochs!r}")

    def ratio_dict(self) -> dict[str, float] | None:
        return dict(self.ratios) if self.ratios else None


@dataclass(frozen=True)
class LayerSpec:
    """The methods applied to one layer; None skips a method."""

    prune: PruneSpec | None = None
    share: ShareSpec | None = None

    def __post_init__(self) -> None:
        if self.prune is not None and not isinstance(self.prune, PruneSpec):
            raise ValueError(f"LayerSpec.prune must be a PruneSpec or None, got {self.prune!r}")
        if self.share is not None and not isinstance(self.share, ShareSpec):
            raise ValueError(f"LayerSpec.share must be a ShareSpec or None, got {self.share!r}")

    def methods(self) -> tuple[PruneSpec | ShareSpec, ...]:
        """The method specs that are set, in pipeline order."""
        return tuple(spec for spec in (self.prune, self.share) if spec is not None)


@dataclass(frozen=True)
class CompressSpec:
    """The whole compression of a model (Deep Compression's first two stages).

    ``layers``: ``(name, LayerSpec)`` pairs or a mapping, stored as a tuple of
    pairs in the given order. ``prune_steps``: prune→retrain rounds that reach
    each layer's final sparsity; ``retrain_epochs``: training epochs per round;
    ``finetune_epochs``: epochs of centroid fine-tuning after sharing;
    ``seed``: seeds random k-means initialisation; ``filters``: filter
    pruning, run before everything else (the layers keep their names).
    """

    layers: tuple[tuple[str, LayerSpec], ...]
    prune_steps: int = 1
    retrain_epochs: int = 0
    finetune_epochs: int = 0
    seed: int = 0
    version: int = SPEC_VERSION
    filters: FilterPruneSpec | None = None

    def __post_init__(self) -> None:
        if self.version != SPEC_VERSION:
            raise ValueError(
                f"compress spec version {self.version!r} is not supported; "
                f"this edgegen reads version {SPEC_VERSION}"
            )
        object.__setattr__(self, "layers", _layer_pairs(self.layers))
        for field_name, minimum in (
            ("prune_steps", 1),
            ("retrain_epochs", 0),
            ("finetune_epochs", 0),
            ("seed", 0),
        ):
            value = getattr(self, field_name)
            if not (_is_int(value) and value >= minimum):
                raise ValueError(f"CompressSpec.{field_name} must be an integer >= {minimum}, got {value!r}")
        if self.filters is not None and not isinstance(self.filters, FilterPruneSpec):
            raise ValueError(f"CompressSpec.filters must be a FilterPruneSpec or None, got {self.filters!r}")

    def layer_dict(self) -> dict[str, LayerSpec]:
        return dict(self.layers)

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(_spec_to_plain(self), indent=indent)

    @classmethod
    def from_json(cls, text: str) -> CompressSpec:
        """Parse and validate; any problem is a ``ValueError`` naming it."""
        try:
            plain = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"compress spec is not valid JSON: {exc}") from None
        return _spec_from_plain(plain)

    def check_model(self, model: nn.Module) -> None:
        """Raise ``ValueError`` unless every named layer is a Conv2d or Linear of ``model``."""
        modules = dict(model.named_modules())
        filter_layers = [name for name, _ in self.filters.ratios] if self.filters is not None else []
        for name in [name for name, _ in self.layers] + filter_layers:
            module = modules.get(name)
            if module is None:
                known = ", ".join(n for n, m in modules.items() if isinstance(m, WEIGHT_LAYERS))
                raise ValueError(f"compress spec names layer {name!r}, which the model lacks (it has {known})")
            if not isinstance(module, WEIGHT_LAYERS):
                raise ValueError(
                    f"compress spec names layer {name!r}, a {type(module).__name__}; "
                    "only Conv2d and Linear layers can be compressed"
                )


WEIGHT_LAYERS = (nn.Conv2d, nn.Linear)


def _layer_pairs(layers: Any) -> tuple[tuple[str, LayerSpec], ...]:
    items: Iterable = layers.items() if isinstance(layers, Mapping) else layers
    try:
        pairs = tuple((name, spec) for name, spec in items)
    except (TypeError, ValueError):
        raise ValueError(
            f"CompressSpec.layers must be (name, LayerSpec) pairs or a mapping, got {layers!r}"
        ) from None
    seen: set[str] = set()
    for name, spec in pairs:
        if not isinstance(name, str) or not name:
            raise ValueError(f"layer names must be non-empty strings, got {name!r}")
        if not isinstance(spec, LayerSpec):
            raise ValueError(f"layer {name!r}: expected a LayerSpec, got {spec!r}")
        if name in seen:
            raise ValueError(f"layer {name!r} appears twice in the compress spec")
        seen.add(name)
    return pairs


def layer_kind(module: nn.Module) -> str:
    """``"conv"`` or ``"fc"``: the two families Deep Compression treats apart."""
    if isinstance(module, nn.Conv2d):
        return "conv"
    if isinstance(module, nn.Linear):
        return "fc"
    raise ValueError(f"{type(module).__name__} has no weights edgegen compresses")


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every Conv2d and Linear of ``model`` with its module path, in model order."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, WEIGHT_LAYERS)]


def default_spec(
    model: nn.Module,
    *,
    sparsity: float | Mapping[str, float] | None = None,
    conv_bits: int = PAPER_CONV_BITS,
    fc_bits: int = PAPER_FC_BITS,
    init: KMeansInit = KMeansInit.LINEAR,
    prune_steps: int = 3,
    retrain_epochs: int = 2,
    finetune_epochs: int = 2,
    seed: int = 0,
) -> CompressSpec:
    """A spec for every Conv2d and Linear of ``model`` with the paper's defaults.

    Codebooks of ``conv_bits`` (8) for conv and ``fc_bits`` (5) for fully
    connected layers, linear k-means initialisation. ``sparsity``: one
    fraction for every layer, or a mapping from layer name (layers left out
    are not pruned; ``PAPER_SPARSITY`` holds the paper's values for the zoo),
    or None for no pruning.
    """
    layers = weight_layers(model)
    if isinstance(sparsity, Mapping):
        unknown = sorted(set(sparsity) - {name for name, _ in layers})
        if unknown:
            raise ValueError(f"sparsity names layers the model lacks: {', '.join(unknown)}")
    pairs = []
    for name, module in layers:
        fraction = sparsity.get(name) if isinstance(sparsity, Mapping) else sparsity
        bits = conv_bits if layer_kind(module) == "conv" else fc_bits
        prune = PruneSpec(sparsity=fraction) if fraction else None
        pairs.append((name, LayerSpec(prune=prune, share=ShareSpec(bits=bits, init=init))))
    return CompressSpec(
        layers=tuple(pairs),
        prune_steps=prune_steps,
        retrain_epochs=retrain_epochs,
        finetune_epochs=finetune_epochs,
        seed=seed,
    )


# --- JSON ------------------------------------------------------------------


def _spec_to_plain(spec: CompressSpec) -> dict:
    return {
        "format": SPEC_FORMAT,
        "version": spec.version,
        "prune_steps": spec.prune_steps,
        "retrain_epochs": spec.retrain_epochs,
        "finetune_epochs": spec.finetune_epochs,
        "seed": spec.seed,
        **({} if spec.filters is None else {"filters": {
            "ratios": dict(spec.filters.ratios),
            "params": spec.filters.params,
            "finetune_epochs": spec.filters.finetune_epochs,
        }}),
        "layers": [
            {
                "name": name,
                "prune": None
                if layer.prune is None
                else {"quality": layer.prune.quality, "sparsity": layer.prune.sparsity},
                "share": None
                if layer.share is None
                else {"bits": layer.share.bits, "init": layer.share.init.value},
            }
            for name, layer in spec.layers
        ],
    }


def _check_keys(where: str, plain: Any, required: set[str], optional: set[str] = frozenset()) -> None:
    if not isinstance(plain, dict):
        raise ValueError(f"{where} must be a JSON object, got {plain!r}")
    missing = sorted(required - plain.keys())
    unknown = sorted(plain.keys() - required - optional)
    if missing:
        raise ValueError(f"{where} lacks {', '.join(missing)}")
    if unknown:
        raise ValueError(f"{where} has unknown keys {', '.join(unknown)}")


def _prune_from_plain(where: str, plain: Any) -> PruneSpec | None:
    if plain is None:
        return None
    _check_keys(where, plain, set(), {"quality", "sparsity"})
    return PruneSpec(quality=plain.get("quality"), sparsity=plain.get("sparsity"))


def _share_from_plain(where: str, plain: Any) -> ShareSpec | None:
    if plain is None:
        return None
    _check_keys(where, plain, {"bits"}, {"init"})
    init_name = plain.get("init", KMeansInit.LINEAR.value)
    try:
        init = KMeansInit(init_name)
    except ValueError:
        choices = ", ".join(i.value for i in KMeansInit)
        raise ValueError(f"{where}.init must be one of {choices}, got {init_name!r}") from None
    return ShareSpec(bits=plain["bits"], init=init)


def _filters_from_plain(plain: Any) -> FilterPruneSpec | None:
    if plain is None:
        return None
    where = "compress spec filters"
    _check_keys(where, plain, set(), {"ratios", "params", "finetune_epochs"})
    ratios = plain.get("ratios") or {}
    if not isinstance(ratios, dict):
        raise ValueError(f"{where}.ratios must be an object of layer: fraction, got {ratios!r}")
    return FilterPruneSpec(ratios=tuple(ratios.items()), params=plain.get("params"),
                           finetune_epochs=plain.get("finetune_epochs", 0))


def _spec_from_plain(plain: Any) -> CompressSpec:
    scalars = {"prune_steps", "retrain_epochs", "finetune_epochs", "seed"}
    _check_keys("compress spec", plain, {"version", "layers"}, scalars | {"format", "filters"})
    if plain.get("format", SPEC_FORMAT) != SPEC_FORMAT:
        raise ValueError(f"not a compress spec: format is {plain['format']!r}, expected {SPEC_FORMAT!r}")
    if plain["version"] != SPEC_VERSION:
        raise ValueError(
            f"compress spec version {plain['version']!r} is not supported; "
            f"this edgegen reads version {SPEC_VERSION}"
        )
    if not isinstance(plain["layers"], list):
        raise ValueError("compress spec 'layers' must be a list")
    pairs = []
    for position, layer in enumerate(plain["layers"]):
        where = f"compress spec layers[{position}]"
        _check_keys(where, layer, {"name"}, {"prune", "share"})
        pairs.append(
            (
                layer["name"],
                LayerSpec(
                    prune=_prune_from_plain(f"{where}.prune", layer.get("prune")),
                    share=_share_from_plain(f"{where}.share", layer.get("share")),
                ),
            )
        )
    return CompressSpec(
        layers=tuple(pairs),
        version=plain["version"],
        filters=_filters_from_plain(plain.get("filters")),
        **{key: plain[key] for key in scalars if key in plain},
    )
