import torch
from torch import nn

from edgegen.zoo.models import ZOO, lenet5, lenet300


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_lenet5_is_the_caffe_lenet_of_deep_compression():
    model = lenet5()
    assert n_params(model) == 431_080
    names = [name for name, _ in model.named_children()]
    assert names == ["conv1", "pool1", "conv2", "pool2", "flatten", "fc1", "relu1", "fc2"]
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def test_lenet300_is_784_300_100_10():
    model = lenet300()
    assert n_params(model) == 266_610
    assert [m.out_features for m in model.modules() if isinstance(m, nn.Linear)] == [300, 100, 10]
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_zoo_factories_return_fresh_models():
    for factory in ZOO.values():
        a, b = factory(), factory()
        assert a is not b
        assert next(a.parameters()) is not next(b.parameters())
