"""Filter pruning (Li et al., *Pruning Filters for Efficient ConvNets*, ICLR 2017).

Each layer's filters are ranked by the L1 norm of their weights and the
weakest are removed whole, together with everything that reads or joins
their channels: BatchNorm channels, the next layers' input channels (the
matching H*W column blocks of a Linear after a flatten), the channels of a
depthwise convolution fed by them. The result is an ordinary ``nn.Module``
of the same class with smaller Conv2d, Linear and BatchNorm modules: dense,
so the importer, the quantizer, Deep Compression and every storage format
take it unchanged.

Which channels depend on which is read off a torch.fx trace run on an
example input. Every channel of every traced tensor carries a label, an
*atom*; atoms that must be removed together are merged (a union-find):

* a residual add (or any elementwise join) merges its operands' atoms
  position by position, so an add group keeps the same indices in every
  member;
* a concatenation, flatten, view or transpose only moves atoms (it is run
  on the label tensors themselves), so a concat maps its output channels
  to each input's, and a flatten gives each Linear column its channel;
* a depthwise convolution's outputs merge with the input channel each one
  reads: it follows its producer;
* a channel shuffle in ``g`` groups (``F.channel_shuffle``,
  ``nn.ChannelShuffle`` or its view(N, g, C/g, H, W) form) and a grouped
  convolution merge the channels at the same position of every group, so
  the groups stay equal in size and a shuffle stays a shuffle;
* atoms of the model's input and output, and of anything passing through
  an operation this module does not know, are fixed: never removed.

One merged class of atoms is a *unit* (a filter, or the filters an add or a
shuffle ties together); the layers whose units are tied form a *group*,
pruned at one ratio. A unit's score is the sum of the L1 norms of its
filters in the group's producing layers (depthwise layers follow and are
not scored); the lowest-scored units go first.
"""

from __future__ import annotations

import contextlib
import copy
import math
import operator
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.fx
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from edgegen.compress.prune import pruned_count
from edgegen.errors import UserError

MAX_RATIO = 1.0  # exclusive: a group always keeps at least one unit
_SEARCH_STEPS = 40  # bisection steps of a parameter target (2^-40 of a ratio)

_ELEMENTWISE_MODULES = (nn.ReLU, nn.ReLU6, nn.Dropout, nn.Identity)
_POOL_MODULES = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d)
_MOVE_MODULES = (nn.Flatten,)
_ELEMENTWISE_FUNCTIONS = {F.relu, torch.relu, F.relu6, F.dropout, "relu", "contiguous"}
_POOL_FUNCTIONS = {F.max_pool2d, F.avg_pool2d, F.adaptive_avg_pool2d}
_MEAN_FUNCTIONS = {torch.mean, "mean"}
_JOIN_FUNCTIONS = {operator.add, operator.iadd, torch.add, "add", "add_",
                   operator.sub, torch.sub, "sub", operator.mul, torch.mul, "mul"}
_SHUFFLE_FUNCTIONS = {F.channel_shuffle, torch.channel_shuffle}
_RESHAPE_FUNCTIONS = {torch.reshape, "view", "reshape"}
_MOVE_FUNCTIONS = {torch.flatten, torch.cat, torch.concat, torch.transpose, torch.permute,
                   "flatten", "transpose", "permute"} | _RESHAPE_FUNCTIONS


# --- atoms ------------------------------------------------------------------


class _Atoms:
    """Union-find over channel labels; a class may be fixed, with the reason."""

    def __init__(self) -> None:
        self.parent: list[int] = []
        self.reason: dict[int, str] = {}

    def fresh(self, count: int, reason: str | None = None) -> np.ndarray:
        start = len(self.parent)
        self.parent.extend(range(start, start + count))
        atoms = np.arange(start, start + count)
        if reason is not None:
            self.fix(atoms, reason)
        return atoms

    def find(self, atom: int) -> int:
        atom = int(atom)
        while self.parent[atom] != atom:
            self.parent[atom] = self.parent[self.parent[atom]]
            atom = self.parent[atom]
        return atom

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        self.parent[rb] = ra
        if rb in self.reason:
            self.reason.setdefault(ra, self.reason.pop(rb))

    def union_all(self, first: np.ndarray, second: np.ndarray) -> None:
        for a, b in np.unique(np.stack([first.ravel(), second.ravel()], axis=1), axis=0):
            self.union(a, b)

    def fix(self, atoms, reason: str) -> None:
        for atom in np.unique(np.asarray(atoms, dtype=np.int64)):
            self.reason.setdefault(self.find(atom), reason)

    def fixed(self, atom: int) -> str | None:
        return self.reason.get(self.find(atom))

    def tie_groups(self, atoms: np.ndarray, groups: int) -> None:
        """Merge the channels at one position of each of ``groups`` equal groups."""
        columns = atoms.reshape(groups, -1)
        for row in columns[1:]:
            self.union_all(columns[0], row)


def _label(atoms: np.ndarray, shape: torch.Size) -> torch.Tensor:
    """A label tensor of ``shape`` holding ``atoms`` along dimension 1 (a
    tensor of fewer dimensions holds one atom)."""
    if len(shape) < 2:
        return torch.full(shape, float(atoms[0]), dtype=torch.float64)
    view = [1, len(atoms)] + [1] * (len(shape) - 2)
    return torch.as_tensor(atoms, dtype=torch.float64).reshape(view).expand(shape).contiguous()


def _atoms_of(label: torch.Tensor) -> np.ndarray:
    return label.numpy().astype(np.int64)


# --- the channel graph --------------------------------------------------------


@dataclass
class _Layer:
    """A Conv2d, Linear or BatchNorm module and the atoms of its channels."""

    name: str
    module: nn.Module
    inputs: np.ndarray  # an atom per input channel (Linear: per column)
    outputs: np.ndarray  # an atom per output channel (BatchNorm: its inputs')

    @property
    def follows(self) -> bool:
        """Depthwise: its filters follow its input channels, it is not ranked."""
        m = self.module
        return isinstance(m, nn.Conv2d) and m.groups == m.in_channels > 1


class _ChannelTracer(torch.fx.Interpreter):
    """Runs the traced model on the example input and, beside each value,
    the atoms of its elements (see the module docstring)."""

    def __init__(self, traced: torch.fx.GraphModule) -> None:
        super().__init__(traced)
        self.atoms = _Atoms()
        self.labels: dict[str, torch.Tensor | None] = {}
        self.layers: dict[str, _Layer] = {}
        self.modules = dict(traced.named_modules())

    def run_node(self, node: torch.fx.Node):
        value = super().run_node(node)
        if node.op == "output":
            for arg in self._tensor_args(node):
                self.atoms.fix(_atoms_of(self.labels[arg.name]), "feed the model's output")
        elif isinstance(value, torch.Tensor):
            self.labels[node.name] = self._labels(node, value)
        else:
            self.labels[node.name] = None
        return value

    def _tensor_args(self, node: torch.fx.Node) -> list[torch.fx.Node]:
        found: list[torch.fx.Node] = []
        torch.fx.node.map_arg((node.args, node.kwargs), found.append)
        return [n for n in found if self.labels.get(n.name) is not None]

    def _labels(self, node: torch.fx.Node, value: torch.Tensor) -> torch.Tensor:
        if node.op == "placeholder":
            channels = value.shape[1] if value.dim() > 1 else 1
            return _label(self.atoms.fresh(channels, "come from the model's input"), value.shape)
        if node.op == "call_module":
            return self._module(node, self.modules[node.target], value)
        if node.op in ("call_function", "call_method"):
            return self._function(node, value)
        return self._opaque(node, value, f"{node.op} {node.target}")

    def _opaque(self, node: torch.fx.Node, value: torch.Tensor, what: str) -> torch.Tensor:
        """An operation whose channel semantics are unknown: whatever it reads
        and writes stays whole."""
        reason = f"pass through {node.name} ({what}), which filter pruning does not follow"
        for arg in self._tensor_args(node):
            self.atoms.fix(_atoms_of(self.labels[arg.name]), reason)
        return torch.full(value.shape, float(self.atoms.fresh(1, reason)[0]), dtype=torch.float64)

    def _source(self, node: torch.fx.Node) -> torch.Tensor:
        return self.labels[node.args[0].name]

    def _channels(self, node: torch.fx.Node, label: torch.Tensor) -> np.ndarray:
        """One atom per channel (dimension 1) of a label; channels whose
        positions carry different atoms are fixed."""
        first = label[0]
        per_channel = first.reshape(first.shape[0], -1)
        atoms = _atoms_of(per_channel[:, 0])
        if not bool((per_channel == per_channel[:, :1]).all()):
            self.atoms.fix(_atoms_of(label), f"are mixed with positions at {node.name}")
        return atoms

    # --- modules

    def _module(self, node, module: nn.Module, value: torch.Tensor) -> torch.Tensor:
        first = node.args[0] if node.args else None
        source = self.labels.get(first.name) if isinstance(first, torch.fx.Node) else None
        if source is None:
            return self._opaque(node, value, type(module).__name__)
        if isinstance(module, nn.Conv2d) and source.dim() == 4:
            return self._weight_layer(node, module, self._channels(node, source), value)
        if isinstance(module, nn.Linear) and source.dim() == 2:
            return self._weight_layer(node, module, _atoms_of(source[0]), value)
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)) and source.shape == value.shape:
            channels = self._channels(node, source)
            self._record(node.target, module, channels, channels)
            return source
        if isinstance(module, _ELEMENTWISE_MODULES) and source.shape == value.shape:
            return source
        if isinstance(module, _POOL_MODULES) and source.dim() == 4:
            return _label(self._channels(node, source), value.shape)
        if isinstance(module, nn.ChannelShuffle):
            return self._shuffle(node, source, module.groups, value)
        if isinstance(module, _MOVE_MODULES):
            return self._moved(node, value, lambda label: module(label))
        return self._opaque(node, value, type(module).__name__)

    def _weight_layer(self, node, module, inputs: np.ndarray, value) -> torch.Tensor:
        layer = self.layers.get(node.target)
        outputs = layer.outputs if layer is not None else self.atoms.fresh(value.shape[1])
        groups = getattr(module, "groups", 1)
        if groups == len(inputs) > 1:  # depthwise: output j reads input j // multiplier
            self.atoms.union_all(outputs, np.repeat(inputs, len(outputs) // len(inputs)))
        elif groups > 1:
            self.atoms.tie_groups(inputs, groups)
            self.atoms.tie_groups(outputs, groups)
        self._record(node.target, module, inputs, outputs)
        return _label(outputs, value.shape)

    def _record(self, name: str, module: nn.Module, inputs: np.ndarray, outputs: np.ndarray) -> None:
        """A module called again shares its channels with its first call."""
        if name in self.layers:
            self.atoms.union_all(self.layers[name].inputs, inputs)
            self.atoms.union_all(self.layers[name].outputs, outputs)
        else:
            self.layers[name] = _Layer(name, module, inputs, outputs)

    # --- functions and methods

    def _function(self, node, value: torch.Tensor) -> torch.Tensor:
        target = node.target
        tensors = self._tensor_args(node)
        if not tensors:
            return self._opaque(node, value, _name(target))
        source = self.labels[tensors[0].name]
        if target in _ELEMENTWISE_FUNCTIONS and source.shape == value.shape and len(tensors) == 1:
            return source
        if target in _JOIN_FUNCTIONS:
            return self._join(node, tensors, value)
        if target in _POOL_FUNCTIONS and source.dim() == 4:
            return _label(self._channels(node, source), value.shape)
        if target in _MEAN_FUNCTIONS and source.dim() == 4 and _spatial_dims(node):
            return _label(self._channels(node, source), value.shape)
        if target in _SHUFFLE_FUNCTIONS:
            groups = node.args[1] if len(node.args) > 1 else node.kwargs["groups"]
            return self._shuffle(node, source, int(groups), value)
        if target in _MOVE_FUNCTIONS:
            if target in _RESHAPE_FUNCTIONS and _splits_channels(source.shape, value.shape):
                # view(N, g, C/g, H, W) opens a channel shuffle: its groups stay equal
                self.atoms.tie_groups(self._channels(node, source), int(value.shape[1]))
            return self._moved(node, value, None)
        return self._opaque(node, value, _name(target))

    def _join(self, node, tensors: list[torch.fx.Node], value: torch.Tensor) -> torch.Tensor:
        """Elementwise with another tensor: the channels it meets are one."""
        labels = [self.labels[n.name] for n in tensors]
        try:
            labels = [label.expand(value.shape) for label in labels]
        except RuntimeError:
            return self._opaque(node, value, _name(node.target))
        for other in labels[1:]:
            self.atoms.union_all(_atoms_of(labels[0]), _atoms_of(other))
        return labels[0].contiguous()

    def _shuffle(self, node, source: torch.Tensor, groups: int, value: torch.Tensor) -> torch.Tensor:
        self.atoms.tie_groups(self._channels(node, source), groups)
        return F.channel_shuffle(source, groups)

    def _moved(self, node, value: torch.Tensor, apply) -> torch.Tensor:
        """A pure data movement: the same movement on the labels."""
        def swap(arg):
            label = self.labels.get(arg.name)
            return label if label is not None else self.env[arg]

        try:
            if apply is not None:
                moved = apply(self._source(node))
            else:
                args, kwargs = torch.fx.node.map_arg((node.args, node.kwargs), swap)
                if node.op == "call_method":
                    moved = getattr(args[0], node.target)(*args[1:], **kwargs)
                else:
                    moved = node.target(*args, **kwargs)
        except RuntimeError:
            return self._opaque(node, value, _name(node.target))
        if moved.shape != value.shape:
            return self._opaque(node, value, _name(node.target))
        return moved.contiguous()


def _name(target) -> str:
    return target if isinstance(target, str) else getattr(target, "__name__", str(target))


def _spatial_dims(node: torch.fx.Node) -> bool:
    dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
    dims = (dims,) if isinstance(dims, int) else tuple(dims or ())
    return sorted(int(d) % 4 for d in dims) == [2, 3]


def _splits_channels(before: torch.Size, after: torch.Size) -> bool:
    return (len(before) == 4 and len(after) == 5 and after[1] * after[2] == before[1]
            and after[3:] == before[2:])


@dataclass
class _ChannelGraph:
    atoms: _Atoms
    layers: dict[str, _Layer]  # Conv2d, Linear and BatchNorm modules by path, model order

    def weight_layers(self) -> list[_Layer]:
        return [layer for layer in self.layers.values() if isinstance(layer.module, (nn.Conv2d, nn.Linear))]

    def kept(self, atoms: np.ndarray, removed: set[int]) -> list[int]:
        return [i for i, atom in enumerate(atoms) if self.atoms.find(atom) not in removed]


def _trace(model: nn.Module, example_input: torch.Tensor) -> _ChannelGraph:
    for name, module in model.named_modules():
        if parametrize.is_parametrized(module):
            raise ValueError(f"layer {name!r} carries a mask or codebook: filter-prune the plain model")
    try:
        traced = torch.fx.symbolic_trace(model)
    except Exception as exc:  # fx raises many types for untraceable code
        raise UserError(f"filter pruning could not trace the model with torch.fx "
                        f"({type(exc).__name__}: {exc}); it needs a model without "
                        "data-dependent control flow") from None
    tracer = _ChannelTracer(traced)
    try:
        with _evaluating(model):
            tracer.run(example_input.float())
    except Exception as exc:
        raise UserError(f"filter pruning: input shape {tuple(example_input.shape)} does not fit "
                        f"the model ({type(exc).__name__}: {_first_line(exc)}); give the shape "
                        "it was built for") from None
    order = {name: i for i, (name, _) in enumerate(model.named_modules())}
    layers = dict(sorted(tracer.layers.items(), key=lambda item: order[item[0]]))
    return _ChannelGraph(tracer.atoms, layers)


# --- groups -------------------------------------------------------------------


@dataclass(frozen=True)
class FilterGroup:
    """Layers whose filters are removed together, at one ratio.

    ``layers``: the Conv2d and Linear layers whose output channels the
    group's units hold, in model order; ``followers``: those of them that
    are depthwise (they follow their input and are not ranked); ``units``:
    how many units can be removed (all but one may go).
    """

    layers: tuple[str, ...]
    followers: tuple[str, ...]
    units: int

    @property
    def name(self) -> str:
        """The first ranked layer: what tables and plots call the group."""
        return next(name for name in self.layers if name not in self.followers)


@dataclass
class _Group:
    info: FilterGroup
    units: list[int]  # roots, ranked weakest first


def _groups(graph: _ChannelGraph) -> list[_Group]:
    """The prunable groups, each with its units ranked by L1 norm."""
    atoms = graph.atoms
    score: dict[int, float] = {}
    holders: dict[int, set[str]] = {}
    for layer in graph.weight_layers():
        norms = _filter_norms(layer.module)
        for index, atom in enumerate(layer.outputs):
            root = atoms.find(atom)
            if atoms.fixed(root) is not None:
                continue
            holders.setdefault(root, set()).add(layer.name)
            score[root] = score.get(root, 0.0) + (0.0 if layer.follows else norms[index])
    # layers are linked when a unit holds filters of both
    order = [layer.name for layer in graph.weight_layers()]
    links = _Atoms()
    link = dict(zip(order, links.fresh(len(order))))
    for names in holders.values():
        first, *rest = sorted(names)
        for other in rest:
            links.union(link[first], link[other])
    members: dict[int, list[int]] = {}
    for root, names in holders.items():
        members.setdefault(links.find(link[next(iter(names))]), []).append(root)
    groups = []
    for roots in members.values():  # in model order, as holders fill in layer order
        names = tuple(n for n in order if any(n in holders[r] for r in roots))
        followers = tuple(n for n in names if graph.layers[n].follows)
        units = sorted(roots, key=lambda root: (score[root], root))
        groups.append(_Group(FilterGroup(names, followers, len(units) - 1), units))
    return groups


def _filter_norms(module: nn.Module) -> np.ndarray:
    """L1 norm of each filter (output channel) of a Conv2d or Linear, in float64."""
    weight = module.weight.detach().to(torch.float64)
    return weight.abs().reshape(weight.shape[0], -1).sum(dim=1).numpy()


# --- pruning ------------------------------------------------------------------


@dataclass(frozen=True)
class KeptFilters:
    """What filter pruning kept: enough to rebuild the smaller architecture
    from the original model code (see ``apply_kept_filters``).

    ``input_shape``: the example input the channels were traced with;
    ``layers``: per Conv2d or Linear whose outputs shrank, the indices of the
    output channels it kept, ascending.
    """

    input_shape: tuple[int, ...]
    layers: tuple[tuple[str, tuple[int, ...]], ...]

    def as_dict(self) -> dict[str, tuple[int, ...]]:
        return dict(self.layers)


@dataclass(frozen=True, eq=False)
class FilterPruned:
    model: nn.Module  # a pruned copy; the caller's model is unchanged
    kept: KeptFilters
    groups: tuple[tuple[FilterGroup, int], ...]  # each group and the units it lost


class FilterPruner:
    """The channel groups of one model, traced once, then pruned at any
    ratios (a sensitivity scan prunes one model many times). The model must
    not change while the pruner is in use: its filters were ranked when the
    pruner was made."""

    def __init__(self, model: nn.Module, example_input: torch.Tensor) -> None:
        self.model = model
        self.example_input = example_input
        self._graph = _trace(model, example_input)
        self._groups = _groups(self._graph)

    @property
    def groups(self) -> tuple[FilterGroup, ...]:
        """The groups filter pruning can shrink, in model order."""
        return tuple(group.info for group in self._groups)

    def prune(self, *, ratios: Mapping[str, float] | None = None,
              params: float | None = None) -> FilterPruned:
        """See ``prune_filters``."""
        if (ratios is None) == (params is None):
            raise ValueError("filter pruning needs exactly one of ratios and params")
        if ratios is not None:
            return self._pruned(_group_ratios(self._graph, self._groups, ratios))
        return self._pruned(self._ratios_for_params(params))

    def _pruned(self, per_group: list[float]) -> FilterPruned:
        removed = _removed_units(self._groups, per_group)
        pruned = _rebuild(self.model, self._graph, removed)
        _check_runs(pruned, self.example_input)
        lost = tuple((group.info, len(set(group.units) & removed)) for group in self._groups)
        return FilterPruned(pruned, _kept(self._graph, removed, self.example_input), lost)

    def _ratios_for_params(self, target: float) -> list[float]:
        """One ratio for every group: the smallest that removes ``target`` of the parameters."""
        if isinstance(target, bool) or not isinstance(target, (int, float)) or not 0 <= target < 1:
            raise UserError(f"filter pruning: the parameter target must be a fraction in [0, 1), "
                            f"got {target!r}")
        total = _parameter_count(self.model)

        def removed_fraction(ratio: float) -> float:
            removed = _removed_units(self._groups, [ratio] * len(self._groups))
            return 1.0 - _parameter_count(_rebuild(self.model, self._graph, removed)) / total

        low, high = 0.0, math.nextafter(MAX_RATIO, 0.0)
        most = removed_fraction(high)
        if most < target:
            raise UserError(f"filter pruning can remove at most {most:.1%} of the parameters (every "
                            f"group keeping one filter), less than the target {target:.1%}; lower it")
        for _ in range(_SEARCH_STEPS):
            middle = (low + high) / 2
            if removed_fraction(middle) >= target:
                high = middle
            else:
                low = middle
        return [high] * len(self._groups)


def filter_groups(model: nn.Module, example_input: torch.Tensor) -> tuple[FilterGroup, ...]:
    """The groups of ``model`` that filter pruning can shrink, in model order."""
    return FilterPruner(model, example_input).groups


def prune_filters(
    model: nn.Module,
    example_input: torch.Tensor,
    *,
    ratios: Mapping[str, float] | None = None,
    params: float | None = None,
) -> FilterPruned:
    """Remove the lowest-L1 filters of a copy of ``model``.

    ``ratios``: per named layer, the fraction of its group's units removed
    (round half up; naming two layers of one group with different ratios is
    an error). ``params``: instead, the fraction of the model's parameters
    (all of them, BatchNorm's too) to remove overall, reached by the smallest
    single ratio applied to every group (found by bisection; a group always
    keeps one unit).
    """
    return FilterPruner(model, example_input).prune(ratios=ratios, params=params)


def _group_ratios(graph: _ChannelGraph, groups: list[_Group], ratios: Mapping[str, float]) -> list[float]:
    by_layer = {name: i for i, group in enumerate(groups) for name in group.info.layers}
    per_group = [0.0] * len(groups)
    named: dict[int, str] = {}
    for name, ratio in ratios.items():
        _check_ratio(name, ratio)
        if name not in by_layer:
            raise UserError(_unprunable(graph, name))
        index = by_layer[name]
        group = groups[index].info
        if name in group.followers:
            raise UserError(f"filter pruning: layer {name!r} is depthwise and follows its input "
                            f"channels; give the ratio to {group.name!r}, whose filters it follows")
        if index in named and per_group[index] != ratio:
            raise UserError(f"filter pruning: layers {named[index]!r} and {name!r} are joined (by "
                            f"an add, a shuffle or a grouped layer: {', '.join(group.layers)} "
                            "lose the same channels); give them one ratio")
        named[index] = name
        per_group[index] = float(ratio)
    return per_group


def _check_ratio(name: str, ratio) -> None:
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 <= ratio < MAX_RATIO:
        raise UserError(f"filter pruning: the ratio of {name!r} must be a fraction in [0, 1), got {ratio!r}")


def _unprunable(graph: _ChannelGraph, name: str) -> str:
    layer = graph.layers.get(name)
    if layer is None or not isinstance(layer.module, (nn.Conv2d, nn.Linear)):
        known = ", ".join(layer.name for layer in graph.weight_layers())
        return f"filter pruning names layer {name!r}, which is not a Conv2d or Linear of the model (it has {known})"
    reasons = sorted({graph.atoms.fixed(atom) for atom in layer.outputs} - {None})
    return (f"filter pruning cannot remove filters of layer {name!r}: its output channels "
            f"{' and '.join(reasons)}; leave it out or prune the layers before it")


def _removed_units(groups: list[_Group], per_group: list[float]) -> set[int]:
    removed: set[int] = set()
    for group, ratio in zip(groups, per_group):
        count = min(group.info.units, pruned_count(len(group.units), ratio))
        removed.update(group.units[:count])
    return removed


def _parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _kept(graph: _ChannelGraph, removed: set[int], example_input: torch.Tensor) -> KeptFilters:
    layers = []
    for layer in graph.weight_layers():
        kept = graph.kept(layer.outputs, removed)
        if len(kept) < len(layer.outputs):
            layers.append((layer.name, tuple(kept)))
    return KeptFilters(tuple(int(d) for d in example_input.shape), tuple(layers))


def apply_kept_filters(model: nn.Module, kept: KeptFilters) -> nn.Module:
    """A copy of ``model`` (the original architecture) shrunk to ``kept``:
    the architecture a ``prune_filters`` result had, its weights taken from
    ``model`` (load the pruned state_dict into it next). A ``kept`` that does
    not fit the model's channel groups is a UserError."""
    example_input = torch.zeros(kept.input_shape)
    graph = _trace(model, example_input)
    layers = {layer.name: layer for layer in graph.weight_layers()}
    removed: set[int] = set()
    for name, indices in kept.layers:
        layer = layers.get(name)
        if layer is None or any(not 0 <= i < len(layer.outputs) for i in indices):
            raise UserError(f"the kept filters of {name!r} do not fit the model: it has no such "
                            "layer or fewer output channels")
        removed.update(graph.atoms.find(a) for i, a in enumerate(layer.outputs) if i not in set(indices))
    fixed = sorted(name for name, layer in layers.items()
                   if any(graph.atoms.fixed(a) is not None and graph.atoms.find(a) in removed
                          for a in layer.outputs))
    if fixed or _kept(graph, removed, example_input) != kept:
        raise UserError("the kept filters do not match the model's channel groups (a layer's kept "
                        "channels differ from those of the layers joined to it); it was pruned "
                        "from other model code")
    pruned = _rebuild(model, graph, removed)
    _check_runs(pruned, example_input)
    return pruned


# --- rebuilding the modules ---------------------------------------------------


def _rebuild(model: nn.Module, graph: _ChannelGraph, removed: set[int]) -> nn.Module:
    """A copy of ``model`` with the channels of the ``removed`` roots gone."""
    pruned = copy.deepcopy(model)
    modules = dict(pruned.named_modules())
    for layer in graph.layers.values():
        keep_in = graph.kept(layer.inputs, removed)
        keep_out = graph.kept(layer.outputs, removed)
        if len(keep_in) == len(layer.inputs) and len(keep_out) == len(layer.outputs):
            continue
        old = modules[layer.name]
        new = _smaller(old, keep_in, keep_out)
        new.train(old.training)
        _set_module(pruned, layer.name, new)
    return pruned


def _smaller(old: nn.Module, keep_in: list[int], keep_out: list[int]) -> nn.Module:
    with torch.no_grad():
        if isinstance(old, nn.Conv2d):
            return _smaller_conv(old, keep_in, keep_out)
        if isinstance(old, nn.Linear):
            new = nn.Linear(len(keep_in), len(keep_out), bias=old.bias is not None,
                            device=old.weight.device, dtype=old.weight.dtype)
            new.weight.copy_(old.weight[keep_out][:, keep_in])
            if old.bias is not None:
                new.bias.copy_(old.bias[keep_out])
            return new
        return _smaller_norm(old, keep_out)


def _smaller_conv(old: nn.Conv2d, keep_in: list[int], keep_out: list[int]) -> nn.Conv2d:
    depthwise = old.groups == old.in_channels > 1
    per_group = old.in_channels // old.groups
    # the same positions survive in every group (see _Atoms.tie_groups)
    local = sorted({i % per_group for i in keep_in})
    groups = len(keep_in) if depthwise else old.groups
    new = nn.Conv2d(len(keep_in), len(keep_out), old.kernel_size, stride=old.stride,
                    padding=old.padding, dilation=old.dilation, groups=groups,
                    bias=old.bias is not None, padding_mode=old.padding_mode,
                    device=old.weight.device, dtype=old.weight.dtype)
    new.weight.copy_(old.weight[keep_out][:, local])
    if old.bias is not None:
        new.bias.copy_(old.bias[keep_out])
    return new


def _smaller_norm(old: nn.Module, keep: list[int]) -> nn.Module:
    new = type(old)(len(keep), eps=old.eps, momentum=old.momentum, affine=old.affine,
                    track_running_stats=old.track_running_stats,
                    device=next(iter(old.state_dict().values())).device)
    if old.affine:
        new.weight.copy_(old.weight[keep])
        new.bias.copy_(old.bias[keep])
    if old.track_running_stats:
        new.running_mean.copy_(old.running_mean[keep])
        new.running_var.copy_(old.running_var[keep])
        new.num_batches_tracked.copy_(old.num_batches_tracked)
    return new


def _set_module(model: nn.Module, path: str, module: nn.Module) -> None:
    parent_path, _, child = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    setattr(parent, child, module)


@contextlib.contextmanager
def _evaluating(model: nn.Module):
    """Eval mode without gradients (BatchNorm must not learn from the example
    input), each module's own mode restored afterwards."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for module, training in modes:
            module.training = training


def _first_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else ""


def _check_runs(model: nn.Module, example_input: torch.Tensor) -> None:
    try:
        with _evaluating(model):
            model(example_input.float())
    except Exception as exc:
        raise UserError(f"after filter pruning, {type(model).__name__} no longer runs "
                        f"({type(exc).__name__}: {_first_line(exc)}); its forward() probably "
                        "writes a channel count as a constant: compute it from the tensor "
                        "(x.size(1), torch.flatten(x, 1))") from None
