"""`pip install .` gives a working tool: sdist -> wheel -> fresh venv -> edgegen.

The source tree (the files git knows, copied to a temporary folder so the
checkout never gets build/ or egg-info folders) is packed into an sdist; the
wheel is built from the unpacked sdist, which proves the sdist complete; the
wheel is installed with its dependencies into a fresh virtual environment,
and the installed ``edgegen`` command generates and deploys a model from a
folder outside the source tree. That is the path on which a wheel that lacks
its templates, C runtime, boards or QEMU plugin source breaks.

Run time: ~35 s here, almost all of it ``pip install`` (torch from the wheel
on disk). Prerequisites (git or a plain source tree, a host C compiler,
venv/ensurepip, Fashion-MNIST) skip the test when missing, or fail it with
EDGEGEN_REQUIRE_TOOLCHAINS=1 (CI).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pytest
from toolchain_support import missing, require_dataset

ROOT = Path(__file__).resolve().parents[2]
DATA_FOLDERS = ("templates", "runtime_c", "boards")  # -> edgegen/_data/<folder> in the wheel
PLUGIN_SOURCE = "edgegen/firmware/qemu_plugin/insn_count.c"
SDIST_MUST_HOLD = ("edgegen", *DATA_FOLDERS, "tests", "scripts", "bench", ".ci",
                   "README.md", "pyproject.toml", "MANIFEST.in")
TORCH_VERSION = "2.13.0"
IGNORED = shutil.ignore_patterns(".git", ".venv", "build", "dist", "out", "*.egg-info",
                                 "__pycache__", "*.py[cod]", "*.so", "*.o", ".pytest_cache",
                                 ".hypothesis")

TIMINGS: dict[str, float] = {}


def run(command, *, cwd, env=None, timeout=900) -> subprocess.CompletedProcess:
    """Run ``command``; on a nonzero exit fail with its output."""
    result = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=timeout)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(map(str, command))} exited with {result.returncode} in {cwd}\n"
                    f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}")
    return result


def timed(name: str, command, **kwargs) -> subprocess.CompletedProcess:
    start = time.perf_counter()
    result = run(command, **kwargs)
    TIMINGS[name] = time.perf_counter() - start
    return result


def source_files() -> list[str]:
    """The files of the source tree, relative to ROOT: what git tracks plus
    new files it does not ignore (a plain copy when ROOT is no git checkout,
    e.g. an unpacked sdist)."""
    if (ROOT / ".git").exists():
        if shutil.which("git") is None:
            missing("git not found (apt-get install git), needed to list the source files")
        listed = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                     cwd=ROOT).stdout
        return sorted(f for f in listed.split("\0") if f and (ROOT / f).is_file())
    files = []
    for folder, dirs, names in os.walk(ROOT):
        ignored = IGNORED(folder, dirs + names)
        dirs[:] = [d for d in dirs if d not in ignored]
        files += [os.path.relpath(os.path.join(folder, n), ROOT) for n in names if n not in ignored]
    return sorted(files)


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without anything that points Python at the checkout or .venv."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")}
    env["PYTHONNOUSERSITE"] = "1"
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def packaged(tmp_path_factory):
    """(source file list, sdist path, wheel path, fresh venv folder, work folder)."""
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        missing("no host C compiler (cc or gcc) found (apt-get install gcc)")
    require_dataset()
    probe = subprocess.run([sys.executable, "-c", "import ensurepip, venv"], capture_output=True)
    if probe.returncode != 0:
        missing(f"{sys.executable} cannot create virtual environments (apt-get install python3-venv)")

    base = tmp_path_factory.mktemp("packaging")
    files = source_files()
    src = base / "src"
    for name in files:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, src / name)

    dist = base / "dist"
    timed("sdist", [sys.executable, "-c",
                    "import sys, setuptools.build_meta as b; b.build_sdist(sys.argv[1])", dist],
          cwd=src, env=clean_env())
    (sdist,) = dist.glob("edgegen-*.tar.gz")
    unpacked = base / "unpacked"
    with tarfile.open(sdist) as tar:
        tar.extractall(unpacked, filter="data")
    (sdist_root,) = unpacked.iterdir()

    wheels = base / "wheels"
    timed("wheel", [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-w", wheels, sdist_root], cwd=base, env=clean_env())
    (wheel,) = wheels.glob("edgegen-*.whl")

    venv = base / "venv"
    timed("venv", [sys.executable, "-m", "venv", venv], cwd=base, env=clean_env())
    timed("pip install", [venv / "bin" / "python", "-m", "pip", "install", wheel],
          cwd=base, env=clean_env())
    work = base / "work"  # outside the source tree: nothing there to import edgegen from
    work.mkdir()
    yield files, sdist, wheel, venv, work
    print("\npackaging timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in TIMINGS.items()))


def test_sdist_holds_the_source_tree(packaged):
    files, sdist, _, _, _ = packaged
    with tarfile.open(sdist) as tar:
        held = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    wanted = [f for f in files if f.split("/")[0] in SDIST_MUST_HOLD]
    assert PLUGIN_SOURCE in wanted and "runtime_c/eg_runtime.h" in wanted
    absent = [f for f in wanted if f not in held]
    assert not absent, f"the sdist lacks {absent} (MANIFEST.in)"


def test_wheel_holds_the_package_and_its_data(packaged):
    files, _, wheel, _, _ = packaged
    with zipfile.ZipFile(wheel) as zf:
        held = set(zf.namelist())
    wanted = {f: f for f in files if f.startswith("edgegen/")}
    wanted |= {f: f"edgegen/_data/{f}" for f in files if f.split("/")[0] in DATA_FOLDERS}
    absent = sorted(f for f, in_wheel in wanted.items() if in_wheel not in held)
    assert not absent, (f"the wheel lacks {absent}: list new packages in pyproject.toml "
                        "[tool.setuptools] packages, data files in package-data")
    for folder in DATA_FOLDERS:
        assert any(f.startswith(f"{folder}/") for f in files), f"no {folder}/ in the source tree"
    assert PLUGIN_SOURCE in held and "edgegen/_data/templates/firmware/linker.ld.j2" in held
    top = {name.split("/")[0] for name in held}
    assert top == {"edgegen", "edgegen-0.1.0.dist-info"}, top


def test_installed_tool_generates_and_deploys_bit_exact(packaged, tmp_path):
    _, _, _, venv, work = packaged
    python, edgegen = venv / "bin" / "python", venv / "bin" / "edgegen"
    env = clean_env(EDGEGEN_CACHE=str(tmp_path / "cache"))

    where = run([python, "-c", "\n".join([
        "import importlib.metadata as m, edgegen, edgegen.paths as p, edgegen.firmware.plugin as q",
        "print(edgegen.__file__)",
        "print(p.TEMPLATES_DIR); print(p.RUNTIME_DIR); print(p.BOARDS_DIR); print(q.PLUGIN_SOURCE)",
        "print(m.version('torch'))",
    ])], cwd=work, env=env).stdout.split("\n")
    package = Path(where[0]).parent
    site_packages = run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                        cwd=work, env=env).stdout.strip()
    assert package == Path(site_packages) / "edgegen", f"edgegen imported from {package}"
    assert ROOT not in package.parents
    for folder, shown in zip(DATA_FOLDERS, where[1:4]):
        assert Path(shown) == package / "_data" / folder
        assert any(Path(shown).iterdir()), f"{shown} is empty"
    assert Path(where[4]).is_file() and package in Path(where[4]).parents
    assert where[5].split("+")[0] == TORCH_VERSION, f"torch {where[5]} installed"

    checkpoint = work / "lenet300.pt"
    run([python, "-c", "import sys, torch; from edgegen.zoo.models import lenet300; "
                       "torch.manual_seed(0); torch.save(lenet300().state_dict(), sys.argv[1])",
         checkpoint], cwd=work, env=env)

    generated = work / "gen"
    timed("edgegen generate", [edgegen, "generate", "lenet300", "--checkpoint", checkpoint,
                               "--out", generated], cwd=work, env=env)
    for name in ("lenet300.c", "lenet300.h", "lenet300_weights.c", "lenet300_weights.h",
                 "runtime/eg_runtime.h"):
        assert (generated / name).is_file(), f"generate wrote no {name}"

    deployed = work / "deploy"
    timed("edgegen deploy", [edgegen, "deploy", "lenet300", "--checkpoint", checkpoint,
                             "--out", deployed, "--test-samples", "50", "--random-samples", "10",
                             "--calib-samples", "100"], cwd=work, env=env)
    for name in ("lenet300.c", "lenet300.h", "lenet300_weights.c", "model.qgraph.npz",
                 "report.md", "report.json"):
        assert (deployed / name).is_file(), f"deploy wrote no {name}"
    report = (deployed / "report.md").read_text()
    assert "bit-exact" in report, report
