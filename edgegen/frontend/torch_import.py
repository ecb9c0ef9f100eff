"""PyTorch nn.Module -> float ``Graph`` (NHWC, shapes known).

The model is traced with torch.fx and its shapes propagated with the example
input. Each traced node becomes one IR node, with three rewrites done on the
way, all exact in float:

* BatchNorm2d after a conv, BatchNorm1d after a linear, is folded into
  its weights and bias;
* ReLU/ReLU6 after a conv or linear whose output has no other user becomes
  the fused activation of that op (in int8 it is only a narrower clamp);
* Dropout and Identity disappear (the model is imported in eval mode).

PyTorch flattens NCHW as (C, H, W); edgegen keeps activations NHWC, so a
Linear fed by a flatten gets its input columns permuted to (H, W, C).
"""

from __future__ import annotations

from dataclasses import replace

import operator

import numpy as np
import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F
from torch.fx.passes.shape_prop import ShapeProp

from edgegen.errors import UserError
from edgegen.frontend.batchnorm_fold import folded_conv
from edgegen.ir import (
    Activation,
    Add,
    ChannelShuffle,
    Concat,
    AvgPool,
    Clamp,
    Conv2D,
    FullyConnected,
    Graph,
    MaxPool,
    Node,
    Reshape,
    Softmax,
    Tensor,
    frozen_array,
)

SUPPORTED = (
    "Conv2d (any groups dividing the channels, dilation=1, zero padding), Linear, ReLU, ReLU6, "
    "MaxPool2d, AvgPool2d (also as F.max_pool2d, F.avg_pool2d; ceil_mode too), "
    "AdaptiveAvgPool2d and mean over H and W with whole windows, "
    "Flatten / view / reshape to (N, -1), "
    "BatchNorm2d after a Conv2d, BatchNorm1d after a Linear, "
    "tensor + tensor of one shape (residual add), "
    "ChannelShuffle (or its view/transpose/view form), torch.cat along the channels, "
    "softmax and log_softmax over the channels, Dropout, Identity"
)

_RELU_FUNCTIONS = {torch.relu, F.relu, torch.nn.functional.relu}
_RELU6_FUNCTIONS = {F.relu6}
_FLATTEN_FUNCTIONS = {torch.flatten}
_IDENTITY_FUNCTIONS = {F.dropout}
# Functional pooling: the parameter names, in F's positional order, of the
# module that computes the same thing.
_POOL_FUNCTIONS = {
    F.max_pool2d: (nn.MaxPool2d, ("kernel_size", "stride", "padding", "dilation", "ceil_mode",
                                  "return_indices")),
    F.avg_pool2d: (nn.AvgPool2d, ("kernel_size", "stride", "padding", "ceil_mode",
                                  "count_include_pad", "divisor_override")),
}
_ADAPTIVE_AVG_POOL_FUNCTIONS = {F.adaptive_avg_pool2d}
_SOFTMAX_FUNCTIONS = {F.softmax, F.log_softmax, torch.softmax, torch.log_softmax}
_SOFTMAX_METHODS = ("softmax", "log_softmax")
_SOFTMAX_MODULES = (nn.Softmax, nn.LogSoftmax)
_MEAN_FUNCTIONS = {torch.mean}
_ADD_FUNCTIONS = {operator.add, operator.iadd, torch.add}
_SHUFFLE_FUNCTIONS = {F.channel_shuffle, torch.channel_shuffle}
_CONCAT_FUNCTIONS = {torch.cat, torch.concat}
_SHUFFLE_STEPS = ("view", "reshape", "transpose", "contiguous")  # methods or torch functions
_ADD_METHODS = ("add", "add_")


def import_model(model: nn.Module, example_input: torch.Tensor, name: str = "model", *,
                 drop_final_softmax: bool = False) -> Graph:
    """Trace ``model`` on ``example_input`` (batch 1, NCHW or (1, F)).
    ``drop_final_softmax``: a softmax or log_softmax that is the model's
    output is left out (the outputs are then the logits before it, with the
    same argmax) and the graph's notes say so; without it such a model is
    refused with a message naming the option."""
    if example_input.dim() not in (2, 4) or example_input.shape[0] != 1:
        raise UserError(
            f"example input has shape {tuple(example_input.shape)}: edgegen takes one "
            "sample, (1, C, H, W) for images or (1, F) for vectors"
        )
    model = model.eval()
    _check_finite(model)
    _check_conv_groups(model)
    try:
        traced = torch.fx.symbolic_trace(model)
    except Exception as exc:  # fx raises many types for untraceable code
        raise UserError(
            f"could not trace the model with torch.fx ({type(exc).__name__}: {exc}); "
            "edgegen needs a model without data-dependent control flow"
        ) from None
    try:
        # A plain call first: ShapeProp prints a traceback before re-raising.
        with torch.no_grad():
            traced(example_input.float())
    except Exception as exc:
        raise UserError(
            f"input shape {tuple(example_input.shape)} does not fit the model: "
            f"{_first_line(exc)}; pass the input shape the model was built for"
        ) from None
    with torch.no_grad():
        ShapeProp(traced).propagate(example_input.float())
    graph = _Importer(traced, name, drop_final_softmax).run()
    if all(isinstance(node.op, Reshape) for node in graph.nodes):
        raise UserError(
            f"model {name} computes nothing: its output is its input"
            f"{' reshaped' if graph.nodes else ''}; edgegen needs at least one layer it supports "
            f"({SUPPORTED})"
        )
    return graph


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _check_finite(model: nn.Module) -> None:
    for pname, tensor in list(model.named_parameters()) + list(model.named_buffers()):
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise UserError(
                f"parameter {pname} holds NaN or Inf values: the checkpoint is broken "
                "(retrain, or load the right checkpoint)"
            )


def _check_conv_groups(model: nn.Module) -> None:
    """Before the model runs (PyTorch's own refusal would not name the
    module): every Conv2d's groups divide both its channel counts."""
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d) and (
                m.groups < 1 or m.in_channels % m.groups or m.out_channels % m.groups):
            raise UserError(
                f"unsupported operator at {name}: Conv2d with groups={m.groups}, which does not "
                f"divide in_channels={m.in_channels} and out_channels={m.out_channels} "
                "(use a group count dividing both)"
            )


def _to_nhwc(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Shape of one sample in edgegen's layout: (C, H, W) -> (H, W, C)."""
    per_sample = tuple(int(d) for d in shape[1:])
    if len(per_sample) == 3:
        c, h, w = per_sample
        return (h, w, c)
    return per_sample


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


class _Importer:
    def __init__(self, traced: torch.fx.GraphModule, name: str, drop_final_softmax: bool):
        self.traced = traced
        self.drop_final_softmax = drop_final_softmax
        self.notes: list[str] = []
        # fx node -> a step of a written-out channel shuffle (see _shuffle_step)
        self.shuffle: dict[str, tuple[str, str, int]] = {}
        self.modules = dict(traced.named_modules())
        self.name = name
        self.nodes: list[Node] = []
        self.tensors: dict[str, Tensor] = {}
        self.alias: dict[str, str] = {}  # fx node name -> IR tensor name
        self.users: dict[str, int] = {}  # IR tensor name -> number of fx users
        self.input = ""
        self.output = ""

    # ------------------------------------------------------------ plumbing

    def run(self) -> Graph:
        for fx_node in self.traced.graph.nodes:
            if fx_node.op == "placeholder":
                self._placeholder(fx_node)
            elif fx_node.op == "output":
                self._output(fx_node)
            elif fx_node.op == "call_module":
                self._call_module(fx_node)
            elif fx_node.op in ("call_function", "call_method"):
                self._call_function(fx_node)
            else:  # get_attr: a parameter used outside a module
                self._unsupported(fx_node, f"{fx_node.op} {fx_node.target}")
        return Graph(
            name=self.name,
            nodes=tuple(self.nodes),
            tensors=tuple(self.tensors[t] for t in self._live_tensors()),
            input=self.input,
            output=self.output,
            notes=tuple(self.notes),
        )

    def _live_tensors(self) -> list[str]:
        names = [self.input] + [n.output for n in self.nodes]
        return list(dict.fromkeys(names))

    def _source(self, fx_node) -> str:
        arg = fx_node.args[0]
        if not isinstance(arg, torch.fx.Node):
            self._unsupported(fx_node, "an operation on a constant")
        if arg.name in self.shuffle:
            self._unsupported(fx_node, f"{_name(fx_node.target)} of a 5-D view that is not a "
                                       "channel shuffle (view(N, g, C/g, H, W).transpose(1, 2)"
                                       ".view(N, C, H, W))")
        return self.alias[arg.name]

    def _shape(self, fx_node) -> tuple[int, ...]:
        return _to_nhwc(tuple(fx_node.meta["tensor_meta"].shape))

    def _add(self, fx_node, op, source: str, name: str | None = None) -> None:
        out = fx_node.name
        self.tensors[out] = Tensor(out, self._shape(fx_node))
        self.nodes.append(Node(name or fx_node.name, op, (source,), out))
        self.alias[fx_node.name] = out
        self.users[out] = len(fx_node.users)

    def _passthrough(self, fx_node) -> None:
        self.alias[fx_node.name] = self._source(fx_node)
        self.users[self.alias[fx_node.name]] += len(fx_node.users) - 1

    def _unsupported(self, fx_node, what: str):
        where = fx_node.target if fx_node.op == "call_module" else fx_node.name
        raise UserError(
            f"unsupported operator at {where}: {what}. edgegen supports: {SUPPORTED}"
        )

    def _placeholder(self, fx_node) -> None:
        if self.input:
            self._unsupported(fx_node, "a second model input")
        self.input = fx_node.name
        self.tensors[self.input] = Tensor(self.input, self._shape(fx_node))
        self.alias[fx_node.name] = self.input
        self.users[self.input] = len(fx_node.users)

    def _output(self, fx_node) -> None:
        result = fx_node.args[0]
        if not isinstance(result, torch.fx.Node):
            self._unsupported(fx_node, "a model that returns several tensors")
        self.output = self.alias[result.name]
        if self.output == self.input:
            self._unsupported(fx_node, "a model that returns its input")
        self._check_output_layout()

    def _check_output_layout(self) -> None:
        # A flatten that feeds no Linear would expose NHWC order to the user.
        for node in self.nodes:
            if isinstance(node.op, Reshape) and node.output == self.output:
                src = self.tensors[node.inputs[0]].shape
                if len(src) == 3 and src[2] > 1 and src[0] * src[1] > 1:
                    raise UserError(
                        f"unsupported operator at {node.name}: flatten of a {src} feature "
                        "map as the model output (its NCHW element order is not kept); "
                        f"end the model with a Linear layer. edgegen supports: {SUPPORTED}"
                    )

    # ------------------------------------------------------------ modules

    def _call_module(self, fx_node) -> None:
        module = self.modules[fx_node.target]
        path = str(fx_node.target)
        if isinstance(module, (nn.Dropout, nn.Identity)):
            self._passthrough(fx_node)
        elif isinstance(module, nn.Conv2d):
            self._add(fx_node, self._conv(fx_node, module), self._source(fx_node), path)
        elif isinstance(module, nn.Linear):
            self._linear(fx_node, module, path)
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            self._batch_norm(fx_node, module)
        elif isinstance(module, (nn.ReLU, nn.ReLU6)):
            act = Activation.RELU if isinstance(module, nn.ReLU) else Activation.RELU6
            self._activation(fx_node, act, path)
        elif isinstance(module, nn.MaxPool2d):
            self._add(fx_node, self._max_pool(fx_node, module), self._source(fx_node), path)
        elif isinstance(module, nn.AvgPool2d):
            self._add(fx_node, self._avg_pool(fx_node, module), self._source(fx_node), path)
        elif isinstance(module, nn.ChannelShuffle):
            self._channel_shuffle(fx_node, self._source(fx_node), module.groups, path)
        elif isinstance(module, _SOFTMAX_MODULES):
            self._softmax(fx_node, type(module).__name__, module.dim, path)
        elif isinstance(module, nn.AdaptiveAvgPool2d):
            self._adaptive_avg_pool(fx_node, module.output_size, path)
        elif isinstance(module, nn.Flatten):
            if module.start_dim != 1 or module.end_dim != -1:
                self._unsupported(fx_node, f"Flatten(start_dim={module.start_dim}, "
                                           f"end_dim={module.end_dim})")
            self._add(fx_node, Reshape(), self._source(fx_node), path)
        else:
            self._unsupported(fx_node, type(module).__name__)

    def _conv(self, fx_node, m: nn.Conv2d) -> Conv2D:
        if _pair(m.dilation) != (1, 1):
            self._unsupported(fx_node, f"Conv2d with dilation={m.dilation}")
        if m.padding_mode != "zeros":
            self._unsupported(fx_node, f"Conv2d with padding_mode={m.padding_mode!r}")
        kh, kw = _pair(m.kernel_size)
        stride = _pair(m.stride)
        if isinstance(m.padding, str):
            padding = self._string_padding(fx_node, m.padding, (kh, kw), stride)
        else:
            ph, pw = _pair(m.padding)
            padding = (ph, ph, pw, pw)
        self._check_padding(fx_node, padding, (kh, kw))
        weight = m.weight.detach().numpy().transpose(0, 2, 3, 1)  # OIHW -> OHWI
        bias = m.bias.detach().numpy() if m.bias is not None else np.zeros(m.out_channels)
        return Conv2D(
            weight=frozen_array(weight, np.float32),
            bias=frozen_array(bias, np.float32),
            stride=stride,
            padding=padding,
            groups=m.groups,
        )

    def _string_padding(self, fx_node, mode, kernel, stride):
        if mode == "valid":
            return (0, 0, 0, 0)
        # 'same' (stride 1 only in PyTorch): the extra pixel of an even
        # kernel goes after, as torch does.
        total_h, total_w = kernel[0] - 1, kernel[1] - 1
        return (total_h // 2, total_h - total_h // 2, total_w // 2, total_w - total_w // 2)

    def _check_padding(self, fx_node, padding, kernel) -> None:
        top, bottom, left, right = padding
        if max(top, bottom) >= kernel[0] or max(left, right) >= kernel[1]:
            self._unsupported(fx_node, f"padding {padding} not smaller than kernel {kernel}")

    def _linear(self, fx_node, m: nn.Linear, path: str) -> None:
        source = self._source(fx_node)
        weight = m.weight.detach().numpy()
        weight = self._permute_flattened_columns(source, weight)
        bias = m.bias.detach().numpy() if m.bias is not None else np.zeros(m.out_features)
        op = FullyConnected(frozen_array(weight, np.float32), frozen_array(bias, np.float32))
        self._add(fx_node, op, source, path)
        if len(self._shape(fx_node)) != 1:
            self._unsupported(fx_node, "Linear applied to a non-flat tensor")

    def _permute_flattened_columns(self, source: str, weight: np.ndarray) -> np.ndarray:
        producer = self._producer(source)
        if producer is None or not isinstance(producer.op, Reshape):
            return weight
        h, w, c = self._feature_map_shape(producer.inputs[0])
        if h * w == 1 or c == 1:
            return weight
        # column index in torch: (ch, y, x); ours: (y, x, ch).
        return weight.reshape(-1, c, h, w).transpose(0, 2, 3, 1).reshape(weight.shape)

    def _feature_map_shape(self, name: str) -> tuple[int, int, int]:
        shape = self.tensors[name].shape
        return shape if len(shape) == 3 else (1, 1, shape[0])

    def _producer(self, tensor: str) -> Node | None:
        for node in reversed(self.nodes):
            if node.output == tensor:
                return node
        return None

    def _batch_norm(self, fx_node, m: nn.BatchNorm1d | nn.BatchNorm2d) -> None:
        """Folded into the layer before it: a BatchNorm2d into a Conv2d, a
        BatchNorm1d into a Linear (whose output is always flat here)."""
        kind = type(m).__name__
        layer, layer_op = ("Conv2d", Conv2D) if isinstance(m, nn.BatchNorm2d) \
            else ("Linear", FullyConnected)
        source = self._source(fx_node)
        producer = self._producer(source)
        if producer is None or not isinstance(producer.op, layer_op) or self.users[source] != 1:
            self._unsupported(fx_node, f"{kind} that does not directly follow a {layer}")
        if producer.op.activation is not Activation.NONE:
            self._unsupported(fx_node, f"{kind} after an activation")
        if m.running_mean is None or m.running_var is None:
            self._unsupported(fx_node, f"{kind} without running statistics")
        op = producer.op
        weight, bias = folded_conv(op.weight, op.bias, m)
        folded = replace(
            op, weight=frozen_array(weight, np.float32), bias=frozen_array(bias, np.float32)
        )
        self._replace_op(producer, folded)
        self.alias[fx_node.name] = source
        self.users[source] = len(fx_node.users)

    def _activation(self, fx_node, act: Activation, path: str) -> None:
        source = self._source(fx_node)
        producer = self._producer(source)
        fusable = (
            producer is not None
            and isinstance(producer.op, (Conv2D, FullyConnected, Add))
            and producer.op.activation is Activation.NONE
            and self.users[source] == 1
            and source != self.input
        )
        if fusable:
            self._replace_op(producer, replace(producer.op, activation=act))
            self.alias[fx_node.name] = source
            self.users[source] = len(fx_node.users)
        else:
            self._add(fx_node, Clamp(act), source, path)

    def _replace_op(self, node: Node, op) -> None:
        index = self.nodes.index(node)
        self.nodes[index] = replace(node, op=op)

    def _pool_geometry(self, fx_node, m):
        """kernel, stride, padding (top, bottom, left, right). ceil_mode's
        last windows, which hang over the bottom and right edges, read
        padding that pooling ignores: extra bottom/right padding, sized from
        the traced output shape."""
        kernel = _pair(m.kernel_size)
        stride = _pair(m.stride if m.stride else m.kernel_size)
        ph, pw = _pair(m.padding)
        padding = (ph, ph, pw, pw)
        if m.ceil_mode:
            (in_h, in_w, _), (out_h, out_w) = (self._feature_map_shape(self._source(fx_node)),
                                               self._shape(fx_node)[:2])
            extra_h = max(0, (out_h - 1) * stride[0] + kernel[0] - in_h - 2 * ph)
            extra_w = max(0, (out_w - 1) * stride[1] + kernel[1] - in_w - 2 * pw)
            padding = (ph, ph + extra_h, pw, pw + extra_w)
        self._check_padding(fx_node, padding, kernel)
        return kernel, stride, padding

    def _max_pool(self, fx_node, m: nn.MaxPool2d) -> MaxPool:
        if _pair(m.dilation) != (1, 1):
            self._unsupported(fx_node, f"MaxPool2d with dilation={m.dilation}")
        if m.return_indices:
            self._unsupported(fx_node, "MaxPool2d with return_indices=True")
        return MaxPool(*self._pool_geometry(fx_node, m))

    def _avg_pool(self, fx_node, m: nn.AvgPool2d) -> AvgPool:
        kernel, stride, padding = self._pool_geometry(fx_node, m)
        if m.divisor_override is not None:
            self._unsupported(fx_node, "AvgPool2d with divisor_override")
        # count_include_pad=True divides by the window within the explicit
        # padding (a ceil_mode overhang beyond it is not counted).
        counted = tuple(_pair(m.padding)) if m.count_include_pad else (0, 0)
        return AvgPool(kernel, stride, padding, counted)

    def _adaptive_avg_pool(self, fx_node, output_size, path: str) -> None:
        """AdaptiveAvgPool2d is an AvgPool2d when its windows are uniform:
        each output size divides the input's (global pooling: size 1)."""
        source = self._source(fx_node)
        h, w, _ = self._feature_map_shape(source)
        out_h, out_w = (output_size, output_size) if isinstance(output_size, int) else output_size
        out_h, out_w = out_h or h, out_w or w
        if h % out_h or w % out_w:
            self._unsupported(fx_node, f"AdaptiveAvgPool2d({output_size}) on {h}x{w}: its "
                                       "windows are not all the same size")
        kernel = (h // out_h, w // out_w)
        self._add(fx_node, AvgPool(kernel, kernel, (0, 0, 0, 0)), source, path)

    def _spatial_mean(self, fx_node, dims, keepdim: bool) -> None:
        """mean over H and W: global average pooling (then (N, C) unless
        keepdim)."""
        rank = len(fx_node.args[0].meta["tensor_meta"].shape)
        dims = (dims,) if isinstance(dims, int) else tuple(dims or ())
        if rank != 4 or sorted(d % 4 for d in dims) != [2, 3]:
            self._unsupported(fx_node, f"mean over dimensions {dims} (only H and W: (2, 3))")
        source = self._source(fx_node)
        h, w, c = self._feature_map_shape(source)
        op = AvgPool((h, w), (h, w), (0, 0, 0, 0))
        if keepdim:
            self._add(fx_node, op, source, fx_node.name)
            return
        pooled = f"{fx_node.name}_pool"
        self.tensors[pooled] = Tensor(pooled, (1, 1, c))
        self.nodes.append(Node(pooled, op, (source,), pooled))
        self.users[pooled] = 1
        self._add(fx_node, Reshape(), pooled, fx_node.name)

    def _channel_shuffle(self, fx_node, source: str, groups: int, name: str) -> None:
        channels = self._feature_map_shape(source)[2]
        if groups < 1 or channels % groups:
            self._unsupported(fx_node, f"a channel shuffle in {groups} groups of {channels} "
                                       "channels (the groups must divide the channels)")
        self._add(fx_node, ChannelShuffle(groups), source, name)

    def _shuffle_step(self, fx_node) -> bool:
        """PyTorch's channel shuffle written out, view(N, g, C/g, H, W) ->
        transpose(1, 2) [-> contiguous()] -> view(N, C, H, W): each step is
        followed here (True), the last one becomes a ChannelShuffle. False:
        not such a step (the caller handles the node)."""
        arg = fx_node.args[0]
        if not isinstance(arg, torch.fx.Node):
            return False
        state = self.shuffle.get(arg.name)
        shape = tuple(fx_node.meta["tensor_meta"].shape)
        target = _name(fx_node.target)
        if state is None:
            in_shape = tuple(arg.meta["tensor_meta"].shape)
            if target in ("view", "reshape") and len(in_shape) == 4 and len(shape) == 5 \
                    and shape[1] * shape[2] == in_shape[1] and shape[3:] == in_shape[2:]:
                self.shuffle[fx_node.name] = ("split", self.alias[arg.name], shape[1])
                return True
            return False
        step, source, groups = state
        dims = sorted(int(d) % 5 for d in fx_node.args[1:3]) if target == "transpose" else None
        if step == "split" and target == "transpose" and dims == [1, 2]:
            self.shuffle[fx_node.name] = ("transposed", source, groups)
        elif step == "transposed" and target == "contiguous":
            self.shuffle[fx_node.name] = state
        elif step == "transposed" and target in ("view", "reshape") and len(shape) == 4:
            self._channel_shuffle(fx_node, source, groups, fx_node.name)
        else:
            self._unsupported(fx_node, f"{_name(target)} of a 5-D view that is not a channel "
                                       "shuffle (view(N, g, C/g, H, W).transpose(1, 2).view(N, C, H, W))")
        return True

    def _concat(self, fx_node) -> None:
        """torch.cat of tensors along the channels (dim 1 of NCHW, or of a
        flat (N, F) batch): the last axis in edgegen's layout."""
        parts = fx_node.args[0]
        dim = fx_node.args[1] if len(fx_node.args) > 1 else fx_node.kwargs.get("dim", 0)
        rank = len(fx_node.meta["tensor_meta"].shape)
        if not isinstance(parts, (list, tuple)) or \
                not all(isinstance(p, torch.fx.Node) for p in parts):
            self._unsupported(fx_node, "a concatenation of something other than tensors")
        if int(dim) % rank != 1:
            self._unsupported(fx_node, f"a concatenation along dimension {dim} (only the "
                                       "channels, dim=1)")
        for part in parts:
            if part.name in self.shuffle:
                self._unsupported(fx_node, "a concatenation of a 5-D view")
        sources = tuple(self.alias[p.name] for p in parts)
        out = fx_node.name
        self.tensors[out] = Tensor(out, self._shape(fx_node))
        self.nodes.append(Node(fx_node.name, Concat(), sources, out))
        self.alias[fx_node.name] = out
        self.users[out] = len(fx_node.users)

    def _residual_add(self, fx_node) -> None:
        """a + b of two tensors of one shape: a join of two branches."""
        args = fx_node.args[:2]
        if (len(args) != 2 or not all(isinstance(a, torch.fx.Node) for a in args)
                or fx_node.kwargs.get("alpha", 1) != 1):
            self._unsupported(fx_node, "an add with a constant or an alpha (only tensor + tensor)")
        first, second = (self.alias[a.name] for a in args)
        shapes = (self.tensors[first].shape, self.tensors[second].shape)
        if shapes[0] != shapes[1]:
            self._unsupported(fx_node, f"an add of shapes {shapes[0]} and {shapes[1]} "
                                       "(broadcasting)")
        out = fx_node.name
        self.tensors[out] = Tensor(out, self._shape(fx_node))
        self.nodes.append(Node(fx_node.name, Add(), (first, second), out))
        self.alias[fx_node.name] = out
        self.users[out] = len(fx_node.users)

    def _softmax(self, fx_node, what: str, dim, name: str) -> None:
        """A softmax or log_softmax over the channels: TFLite's int8 SOFTMAX
        or LOG_SOFTMAX. A final one is dropped on request (the logits have
        the same argmax; the report says so)."""
        final = [user.op for user in fx_node.users] == ["output"]
        if self.drop_final_softmax and final:
            self._passthrough(fx_node)
            self.notes.append(f"the final {what} ({fx_node.name}) was dropped on request "
                              "(--drop-softmax): the outputs are the logits before it")
            return
        rank = len(fx_node.meta["tensor_meta"].shape)
        if dim is None:  # PyTorch's implicit choice for 2-D and 4-D inputs
            dim = 1
        if rank not in (2, 4) or not isinstance(dim, int) or dim % rank != 1:
            self._unsupported(fx_node, f"{what} over dim={dim} of a {rank}-D tensor (only over "
                                       "the channels, dim=1, is supported)")
        self._add(fx_node, Softmax(log="log" in what.lower()), self._source(fx_node), name)

    def _call_pool_function(self, fx_node) -> None:
        """F.max_pool2d / F.avg_pool2d: the equivalent module's geometry."""
        module_type, names = _POOL_FUNCTIONS[fx_node.target]
        params = dict(zip(names, fx_node.args[1:]))
        params.update(fx_node.kwargs)
        try:
            module = module_type(**params)
        except TypeError as error:
            self._unsupported(fx_node, f"{_name(fx_node.target)} with arguments {params} ({error})")
        pool = self._max_pool if module_type is nn.MaxPool2d else self._avg_pool
        self._add(fx_node, pool(fx_node, module), self._source(fx_node), fx_node.name)

    # ---------------------------------------------------------- functions

    def _call_function(self, fx_node) -> None:
        target = fx_node.target
        if _name(target) in _SHUFFLE_STEPS and self._shuffle_step(fx_node):
            return  # a step of view(N, g, C/g, H, W).transpose(1, 2).view(N, C, H, W)
        if target in _RELU_FUNCTIONS or target == "relu":
            self._activation(fx_node, Activation.RELU, fx_node.name)
        elif target in _RELU6_FUNCTIONS:
            self._activation(fx_node, Activation.RELU6, fx_node.name)
        elif target in _IDENTITY_FUNCTIONS or target == "contiguous":
            self._passthrough(fx_node)
        elif fx_node.meta.get("tensor_meta") is None and _shape_arithmetic(fx_node):
            pass  # x.size(0) in x.view(x.size(0), -1): only the view's result matters
        elif target in _ADD_FUNCTIONS or target in _ADD_METHODS:
            self._residual_add(fx_node)
        elif target in _SOFTMAX_FUNCTIONS or target in _SOFTMAX_METHODS:
            dim = fx_node.args[1] if len(fx_node.args) > 1 else fx_node.kwargs.get("dim")
            self._softmax(fx_node, _name(target), dim, fx_node.name)
        elif target in _POOL_FUNCTIONS:
            self._call_pool_function(fx_node)
        elif target in _ADAPTIVE_AVG_POOL_FUNCTIONS:
            size = fx_node.args[1] if len(fx_node.args) > 1 else fx_node.kwargs["output_size"]
            self._adaptive_avg_pool(fx_node, size, fx_node.name)
        elif target in _MEAN_FUNCTIONS or target == "mean":
            args = dict(zip(("dim", "keepdim"), fx_node.args[1:]))
            args.update({k: v for k, v in fx_node.kwargs.items() if k in ("dim", "keepdim")})
            self._spatial_mean(fx_node, args.get("dim"), bool(args.get("keepdim", False)))
        elif target in _CONCAT_FUNCTIONS:
            self._concat(fx_node)
        elif target in _SHUFFLE_FUNCTIONS:
            groups = fx_node.args[1] if len(fx_node.args) > 1 else fx_node.kwargs["groups"]
            self._channel_shuffle(fx_node, self._source(fx_node), int(groups), fx_node.name)
        elif target in _FLATTEN_FUNCTIONS or target in ("flatten", "view", "reshape"):
            if len(self._shape(fx_node)) != 1:
                self._unsupported(fx_node, f"{_name(target)} to a shape other than (N, -1)")
            self._add(fx_node, Reshape(), self._source(fx_node), fx_node.name)
        else:
            self._unsupported(fx_node, _name(target))


_SHAPE_ARITHMETIC = {operator.getitem, operator.floordiv, operator.mul, operator.add,
                     operator.sub}


def _shape_arithmetic(fx_node) -> bool:
    """A size (x.size(), n, c, h, w = x.size(), c // groups): a value that
    is not a tensor, computed from sizes and constants only. It can only
    reach the graph as a shape argument, which the traced shapes already
    hold."""
    if fx_node.target != "size" and fx_node.target not in _SHAPE_ARITHMETIC:
        return False
    operands = [a for a in fx_node.args if isinstance(a, torch.fx.Node)]
    return all(a.meta.get("tensor_meta") is None for a in operands) or fx_node.target == "size"


def _name(target) -> str:
    return target if isinstance(target, str) else getattr(target, "__name__", str(target))


def count_parameters(graph: Graph) -> int:
    """Weights and biases of the imported graph (after BatchNorm folding)."""
    total = 0
    for node in graph.nodes:
        if isinstance(node.op, (Conv2D, FullyConnected)):
            total += node.op.weight.size + node.op.bias.size
    return total

