"""Folding BatchNorm into the convolution before weight sharing: which pairs
fold, the folded model computes what the original did, masks survive."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from edgegen.compress.fold_batchnorm import apply_folds, conv_batchnorm_pairs, fold_batchnorms
from edgegen.compress.prune import apply_mask, magnitude_mask, mask_of
from edgegen.compress.spec import PruneSpec
from edgegen.errors import UserError
from edgegen.zoo import models
from edgegen.zoo.mlperf_tiny import with_batchnorm_statistics


class Branches(nn.Module):
    """conv-BN (folds), bias-free conv-BN (folds, gains a bias), a conv read
    twice before its BN (does not), a BN after a ReLU (does not)."""

    def __init__(self):
        super().__init__()
        self.a, self.bn_a = nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.b, self.bn_b = nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4)
        self.c, self.bn_c = nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4)
        self.bn_d = nn.BatchNorm2d(4)

    def forward(self, x):
        x = F.relu(self.bn_a(self.a(x)))
        x = self.bn_b(self.b(x))
        y = self.c(x)
        return self.bn_d(F.relu(self.bn_c(y) + y))


def _trained_statistics(model: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    return with_batchnorm_statistics(model)


def test_only_a_batchnorm_that_alone_reads_a_conv_is_paired():
    assert conv_batchnorm_pairs(Branches()) == (("a", "bn_a"), ("b", "bn_b"))


def test_every_batchnorm_of_the_zoo_networks_pairs_with_its_conv():
    for name in ("mobilenet", "resnet", "shufflenet"):
        model = models.ZOO[name]()
        norms = [n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]
        assert [norm for _, norm in conv_batchnorm_pairs(model)] == norms, name


def test_the_folded_model_computes_what_the_original_did():
    model = _trained_statistics(Branches())
    images = torch.rand(8, 1, 12, 12)
    with torch.no_grad():
        expected = model(images)
        fold_batchnorms(model, conv_batchnorm_pairs(model))
        folded = model(images)
    assert isinstance(model.bn_a, nn.Identity) and isinstance(model.bn_b, nn.Identity)
    assert isinstance(model.bn_c, nn.BatchNorm2d)
    assert model.b.bias is not None and model.b.bias.requires_grad
    torch.testing.assert_close(folded, expected, rtol=1e-5, atol=1e-5)


def test_a_pruning_mask_stays_in_force_through_the_fold():
    model = _trained_statistics(Branches())
    mask = magnitude_mask(model.b.weight.detach(), PruneSpec(sparsity=0.6))
    apply_mask(model.b, mask)
    images = torch.rand(4, 1, 12, 12)
    with torch.no_grad():
        expected = model(images)
        fold_batchnorms(model, (("b", "bn_b"),))
        torch.testing.assert_close(model(images), expected, rtol=1e-5, atol=1e-5)
    assert torch.equal(mask_of(model.b), mask)
    assert torch.equal(model.b.weight != 0, mask)


def test_the_model_code_takes_the_folded_state():
    model = _trained_statistics(Branches())
    fold_batchnorms(model, conv_batchnorm_pairs(model))
    fresh = apply_folds(Branches(), (("a", "bn_a"), ("b", "bn_b")))
    fresh.load_state_dict(model.state_dict())  # strict: same keys, same shapes
    images = torch.rand(2, 1, 12, 12)
    with torch.no_grad():
        assert torch.equal(fresh.eval()(images), model(images))


@pytest.mark.parametrize("fold", [("c", "bn_c"), ("b", "bn_a"), ("a", "bn_d"), ("x", "bn_a")])
def test_a_fold_the_model_code_does_not_have_is_refused(fold):
    with pytest.raises(UserError, match=f"cannot fold BatchNorm '{fold[1]}' into layer '{fold[0]}'"):
        apply_folds(Branches(), (fold,))


def test_a_batchnorm1d_folds_into_its_pruned_linear():
    torch.manual_seed(0)
    model = with_batchnorm_statistics(nn.Sequential(nn.Linear(12, 6), nn.BatchNorm1d(6), nn.ReLU(),
                                                    nn.Linear(6, 3)))
    apply_mask(model[0], magnitude_mask(model[0].weight, PruneSpec(sparsity=0.5)))
    assert conv_batchnorm_pairs(model) == (("0", "1"),)  # the pruned Linear is a subclass
    x = torch.randn(5, 12)
    with torch.no_grad():
        expected = model(x)
        fold_batchnorms(model, (("0", "1"),))
        assert isinstance(model[1], nn.Identity)
        torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-5)
    assert (mask_of(model[0]) == 0).sum() == 36 and (model[0].weight[mask_of(model[0]) == 0] == 0).all()
