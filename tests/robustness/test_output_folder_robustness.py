"""Output folders: whole or absent, replaced only when edgegen made them,
never at the cost of a file of the user's."""

import json
import os
import stat

import pytest

from edgegen import output_folder
from edgegen.errors import UserError
from edgegen.output_folder import MANIFEST_NAME, atomic_folder, check_target, claim_path


def write_output(out, force=False, inputs=(), during=None, files=None):
    """One run writing ``files`` (name -> text) into ``out``; ``during(out)``
    runs while the folder is being written."""
    files = files or {"model.c": "int x;\n", "build/lib.so": "binary", "runtime/k.c": "/* k */\n"}
    with atomic_folder(out, force, inputs) as folder:
        for name, text in files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text)
        if during is not None:
            during(out)
    return out


def leftovers(parent):
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_a_new_folder_appears_whole_with_its_manifest(tmp_path):
    out = write_output(tmp_path / "out")
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert sorted(manifest["files"]) == ["build/lib.so", "model.c", "runtime/k.c"]
    assert manifest["build_folders"] == ["build"]
    assert output_folder.foreign_files(out) is None
    assert leftovers(tmp_path) == []


def test_a_failing_run_leaves_nothing_not_even_the_parents_it_made(tmp_path):
    out = tmp_path / "a" / "b" / "out"

    def fail(_):
        raise RuntimeError("compiler exploded")

    with pytest.raises(RuntimeError):
        write_output(out, during=fail)
    assert list(tmp_path.iterdir()) == []


def test_a_parent_that_existed_is_kept_after_a_failure(tmp_path):
    (tmp_path / "a").mkdir()
    with pytest.raises(KeyboardInterrupt):
        write_output(tmp_path / "a" / "b" / "out", during=lambda _: (_ for _ in ()).throw(KeyboardInterrupt))
    assert [p.name for p in tmp_path.iterdir()] == ["a"] and list((tmp_path / "a").iterdir()) == []


def test_an_existing_folder_needs_force(tmp_path):
    out = write_output(tmp_path / "out")
    with pytest.raises(UserError, match="already exists.*--force"):
        write_output(out, files={"other.c": ""})
    assert (out / "model.c").read_text() == "int x;\n"


def test_force_replaces_a_folder_that_edgegen_wrote(tmp_path):
    out = write_output(tmp_path / "out")
    write_output(out, force=True, files={"new.c": "new\n"})
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST_NAME, "new.c"]
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("user_file", ["notes.txt", "runtime/mine.c"])
def test_force_never_replaces_a_folder_holding_a_file_of_the_users(tmp_path, user_file):
    out = write_output(tmp_path / "out")
    (out / user_file).write_text("mine")
    with pytest.raises(UserError, match=f"files edgegen did not write: {user_file}"):
        write_output(out, force=True)
    assert (out / user_file).read_text() == "mine"


def test_force_never_replaces_a_folder_with_an_edited_file(tmp_path):
    out = write_output(tmp_path / "out")
    (out / "model.c").write_text("int x; /* my fix */\n")
    with pytest.raises(UserError, match="changed since edgegen wrote them: model.c"):
        write_output(out, force=True)
    assert "my fix" in (out / "model.c").read_text()


def test_build_products_may_change(tmp_path):
    out = write_output(tmp_path / "out")
    (out / "build" / "lib.so").write_text("rebuilt by make")
    (out / "build" / "extra.o").write_text("object")
    write_output(out, force=True)
    assert (out / "build" / "lib.so").read_text() == "binary"


def test_force_never_replaces_a_folder_without_manifest(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    with pytest.raises(UserError, match="not written by edgegen"):
        write_output(out, force=True)
    assert (out / "thesis.tex").read_text() == "years of work"


def test_a_damaged_manifest_is_no_manifest(tmp_path):
    out = write_output(tmp_path / "out")
    (out / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(UserError, match="not written by edgegen"):
        write_output(out, force=True)


def test_out_may_not_hold_an_input(tmp_path):
    out = write_output(tmp_path / "out")
    checkpoint = out / "model.c"  # even a file edgegen wrote, once it is an input
    with pytest.raises(UserError, match="holds .*model.c, an input of this run"):
        check_target(out, True, [checkpoint])
    with pytest.raises(UserError, match="an input of this run"):
        check_target(tmp_path, True, [tmp_path / "data" / "x.idx"])
    check_target(tmp_path / "elsewhere", True, [checkpoint])


def test_an_ancestor_that_is_a_file(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match="is a file, not a folder"):
        check_target(tmp_path / "file" / "sub" / "out", False)


def test_a_folder_that_appears_during_the_run_is_never_overwritten(tmp_path):
    def user_creates(out):
        out.mkdir()
        (out / "important.txt").write_text("mine")

    with pytest.raises(UserError, match="appeared while edgegen was running"):
        write_output(tmp_path / "out", during=user_creates)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["important.txt"]
    assert leftovers(tmp_path) == []


def test_a_file_added_to_the_old_folder_during_a_forced_run_is_kept(tmp_path):
    out = write_output(tmp_path / "out")
    with pytest.raises(UserError, match="changed while edgegen was running"):
        write_output(out, force=True, during=lambda o: (o / "late.txt").write_text("mine"),
                     files={"new.c": ""})
    assert (out / "late.txt").read_text() == "mine" and (out / "model.c").is_file()
    assert not (out / "new.c").exists() and leftovers(tmp_path) == []


def test_a_second_run_on_the_same_folder_fails_while_the_first_runs(tmp_path):
    out = tmp_path / "out"

    def second_run(o):
        with pytest.raises(UserError, match="another edgegen run is writing"):
            write_output(o)

    write_output(out, during=second_run)
    assert (out / "model.c").is_file() and leftovers(tmp_path) == []


def test_the_claim_of_a_killed_run_is_reclaimed(tmp_path):
    out = tmp_path / "out"
    stale = claim_path(out)
    stale.mkdir()
    (stale / "half.c").write_text("half-written")
    write_output(out)
    assert not (out / "half.c").exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("renameat2", [True, False], ids=["renameat2", "fallback"])
def test_renames_with_and_without_renameat2(tmp_path, monkeypatch, renameat2):
    if not renameat2:
        monkeypatch.setattr(output_folder, "_renameat2", lambda *a: False)
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    (a / "x").write_text("a")
    b.mkdir()
    (b / "y").write_text("b")
    with pytest.raises(FileExistsError):
        output_folder.rename_noreplace(a, b)
    output_folder.exchange(a, b)
    assert (a / "y").is_file() and (b / "x").is_file()
    output_folder.rename_noreplace(a, tmp_path / "c")
    assert (tmp_path / "c" / "y").is_file()


@pytest.mark.parametrize("umask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)])
def test_files_and_folders_get_the_users_umask(tmp_path, umask, file_mode, dir_mode):
    old = os.umask(umask)
    try:
        out = write_output(tmp_path / "out")
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == dir_mode
    assert stat.S_IMODE((out / "model.c").stat().st_mode) == file_mode
    assert stat.S_IMODE((out / MANIFEST_NAME).stat().st_mode) == file_mode
