
import pytest
import torch
from torch import nn

from edgegen.errors import UserError
from edgegen.zoo.checkpoints import save_checkpoint
from edgegen.zoo.user_model import load_user_model

MODULE = """
from torch import nn

def make_net():
    return nn.Sequential(nn.Flatten(), nn.Linear(4, 2))

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x)

instance = Net()

def not_a_model():
    return 42

def broken():
    raise RuntimeError("kaboom")

NUMBER = 3
"""


@pytest.fixture
def user_dir(tmp_path, monkeypatch, request):
    """A directory holding a uniquely named model module, made the current directory."""
    name = f"usermodels_{request.node.name.replace('[', '_').replace(']', '').replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.path", list(__import__("sys").path))
    return name


def test_function_and_class_factories(user_dir):
    model = load_user_model(f"{user_dir}:make_net", None)
    assert isinstance(model, nn.Sequential) and not model.training
    assert isinstance(load_user_model(f"{user_dir}:Net", None), nn.Module)
    assert isinstance(load_user_model(f"{user_dir}:instance", None), nn.Module)


def test_py_file_path(user_dir):
    assert isinstance(load_user_model(f"./{user_dir}.py:make_net", None), nn.Sequential)


def test_with_checkpoint(user_dir, tmp_path):
    torch.manual_seed(1)
    source = load_user_model(f"{user_dir}:Net", None)
    save_checkpoint(source, tmp_path / "net.pt", meta={})
    loaded = load_user_model(f"{user_dir}:Net", tmp_path / "net.pt")
    assert torch.equal(loaded.fc.weight, source.fc.weight)


def test_missing_checkpoint(user_dir, tmp_path):
    with pytest.raises(UserError, match="checkpoint .*absent.pt not found"):
        load_user_model(f"{user_dir}:Net", tmp_path / "absent.pt")


def test_checkpoint_of_another_model(user_dir, tmp_path):
    save_checkpoint(nn.Linear(3, 3), tmp_path / "other.pt", meta={})
    with pytest.raises(UserError, match="probably a checkpoint of a different model"):
        load_user_model(f"{user_dir}:Net", tmp_path / "other.pt")


@pytest.mark.parametrize("spec", ["nocolon", ":make_net", "mod:", "mod:1abc", "my-mod:f", "a b:f"])
def test_malformed_spec(spec):
    with pytest.raises(UserError, match="is malformed"):
        load_user_model(spec, None)


def test_module_not_found(user_dir):
    with pytest.raises(UserError, match="model module 'no_such_module_xyz' not found"):
        load_user_model("no_such_module_xyz:f", None)


def test_module_that_fails_to_import(tmp_path, monkeypatch):
    (tmp_path / "badimport_mod.py").write_text("import no_such_dependency_xyz\n")
    (tmp_path / "syntax_mod.py").write_text("def f(:\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="importing model module 'badimport_mod' failed: ModuleNotFoundError: No module named 'no_such_dependency_xyz'"):
        load_user_model("badimport_mod:f", None)
    with pytest.raises(UserError, match="importing model module 'syntax_mod' failed: SyntaxError"):
        load_user_model("syntax_mod:f", None)


def test_missing_attribute(user_dir):
    with pytest.raises(UserError, match=r"has no attribute 'make_nett' \(it has: .*make_net"):
        load_user_model(f"{user_dir}:make_nett", None)


def test_factory_returning_non_module(user_dir):
    with pytest.raises(UserError, match=r"not_a_model\(\) returned int, not a torch.nn.Module"):
        load_user_model(f"{user_dir}:not_a_model", None)


def test_factory_raising(user_dir):
    with pytest.raises(UserError, match=r"calling broken\(\) failed: RuntimeError: kaboom"):
        load_user_model(f"{user_dir}:broken", None)


def test_non_callable_attribute(user_dir):
    with pytest.raises(UserError, match="NUMBER is a int, not a function"):
        load_user_model(f"{user_dir}:NUMBER", None)


def test_missing_py_file(tmp_path):
    with pytest.raises(UserError, match="model file .*gone.py not found"):
        load_user_model(f"{tmp_path}/gone.py:f", None)
