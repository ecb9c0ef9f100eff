import pytest
import torch
from torch import nn

from edgegen import __version__
from edgegen.errors import UserError
from edgegen.zoo.checkpoints import (
    cache_dir,
    checkpoint_path,
    load_checkpoint,
    save_checkpoint,
    trained_zoo_model,
)
from edgegen.zoo.models import lenet5, lenet300
from edgegen.zoo.train import RECIPES, TrainRecipe


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("EDGEGEN_CACHE", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("EDGEGEN_CACHE")
    assert cache_dir() == tmp_path / "xdg" / "edgegen"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "edgegen"
    assert checkpoint_path("lenet5", "fashion-mnist").name == "lenet5-fashion-mnist.pt"


def test_round_trip(tmp_path):
    torch.manual_seed(0)
    model = lenet300()
    path = tmp_path / "sub" / "m.pt"
    written = save_checkpoint(model, path, meta={"model": "lenet300", "test_accuracy": 0.5})
    assert written["edgegen_version"] == __version__
    assert [p.name for p in path.parent.iterdir()] == ["m.pt"]  # no temp file left behind
    other = lenet300()
    meta = load_checkpoint(other, path)
    assert meta["model"] == "lenet300" and meta["test_accuracy"] == 0.5
    for a, b in zip(model.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b)


def test_plain_state_dict_is_accepted(tmp_path):
    model = lenet300()
    torch.save(model.state_dict(), tmp_path / "plain.pt")
    assert load_checkpoint(lenet300(), tmp_path / "plain.pt") == {}


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match=r"checkpoint .*nope.pt not found: train it with `edgegen train NAME` or pass --checkpoint"):
        load_checkpoint(lenet300(), tmp_path / "nope.pt")


def test_not_a_torch_file(tmp_path):
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(UserError, match="is not a readable PyTorch weights file"):
        load_checkpoint(lenet300(), tmp_path / "text.pt")


def test_truncated_file(tmp_path):
    save_checkpoint(lenet300(), tmp_path / "m.pt", meta={})
    data = (tmp_path / "m.pt").read_bytes()
    (tmp_path / "m.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="is not a readable PyTorch weights file"):
        load_checkpoint(lenet300(), tmp_path / "m.pt")


def test_pickled_model_is_refused(tmp_path):
    torch.save(lenet300(), tmp_path / "whole.pt")
    with pytest.raises(UserError, match=r"save model.state_dict\(\) instead"):
        load_checkpoint(lenet300(), tmp_path / "whole.pt")


def test_wrong_model(tmp_path):
    save_checkpoint(lenet300(), tmp_path / "m.pt", meta={"model": "lenet300"})
    with pytest.raises(UserError) as info:
        load_checkpoint(lenet5(), tmp_path / "m.pt")
    message = str(info.value)
    assert "saved for model 'lenet300'" in message
    assert "missing keys conv1.weight" in message and "unexpected keys fc3.weight" in message
    assert "probably a checkpoint of a different model" in message


def test_shape_mismatch(tmp_path):
    small = nn.Sequential(nn.Linear(4, 3))
    save_checkpoint(small, tmp_path / "m.pt", meta={})
    with pytest.raises(UserError, match=r"0.weight has shape \(3, 4\) in the checkpoint but \(5, 4\) in the model"):
        load_checkpoint(nn.Sequential(nn.Linear(4, 5)), tmp_path / "m.pt")


def test_trained_zoo_model_trains_once_then_loads(tiny_dataset, monkeypatch):
    monkeypatch.setitem(RECIPES, "lenet300", TrainRecipe(epochs=1, batch_size=50, lr=3e-3))
    with pytest.raises(UserError, match="lenet300-tiny.pt not found: train it with `edgegen train lenet300`"):
        trained_zoo_model("lenet300", tiny_dataset, train_if_missing=False)
    model, meta = trained_zoo_model("lenet300", tiny_dataset, progress=False)
    assert checkpoint_path("lenet300", "tiny").is_file()
    assert meta["model"] == "lenet300" and meta["dataset"] == "tiny"
    assert meta["recipe"]["epochs"] == 1 and meta["recipe"]["optimizer"] == "adam"
    again, meta2 = trained_zoo_model("lenet300", tiny_dataset, train_if_missing=False)
    assert meta2 == meta and not again.training
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)


def test_unknown_zoo_model(tiny_dataset):
    with pytest.raises(UserError, match="unknown zoo model 'vgg'"):
        trained_zoo_model("vgg", tiny_dataset)


def test_train_target_is_new_or_an_edgegen_checkpoint(tmp_path):
    from edgegen.zoo.checkpoints import check_checkpoint_target

    check_checkpoint_target(tmp_path / "new.pt", force=False)
    save_checkpoint(lenet300(), tmp_path / "ours.pt", meta={})
    with pytest.raises(UserError, match="ours.pt exists: pass --force to replace it"):
        check_checkpoint_target(tmp_path / "ours.pt", force=False)
    check_checkpoint_target(tmp_path / "ours.pt", force=True)
    torch.save(lenet300().state_dict(), tmp_path / "theirs.pt")
    (tmp_path / "notes.txt").write_text("notes")
    for name in ("theirs.pt", "notes.txt"):
        for force in (False, True):
            with pytest.raises(UserError, match=f"{name} exists and is not an edgegen checkpoint"):
                check_checkpoint_target(tmp_path / name, force=force)


def test_dtype_of_the_checkpoint_must_be_the_models(tmp_path):
    state = lenet300().state_dict()
    state["fc1.bias"] = state["fc1.bias"].double()
    torch.save(state, tmp_path / "d.pt")
    with pytest.raises(UserError, match=r"fc1.bias is torch.float64 in the checkpoint but torch.float32 "
                                        r"in the model.*torch.save\(model.float\(\).state_dict\(\), PATH\)"):
        load_checkpoint(lenet300(), tmp_path / "d.pt")
