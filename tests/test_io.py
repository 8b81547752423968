import os
import subprocess
import sys

import pytest

from deae_aug.io import atomic_folder, atomic_path, remove_stale


def dead_pid() -> int:
    """The pid of a process that has exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_temporaries_of_killed_processes_are_removed_and_those_of_live_ones_kept(tmp_path, capsys):
    dead = dead_pid()
    (tmp_path / f".aug.partial-{dead}").mkdir()
    (tmp_path / f".aug.partial-{dead}" / "00001.png").write_bytes(b"half")
    (tmp_path / f".manifest.csv.{dead}.k2j_x9ab.tmp").write_text("half")
    (tmp_path / f".aug.partial-{os.getpid()}").mkdir()  # a run still going
    (tmp_path / "aug").mkdir()  # the user's own folder
    removed = remove_stale(tmp_path)
    assert sorted(p.name for p in removed) == sorted(
        [f".aug.partial-{dead}", f".manifest.csv.{dead}.k2j_x9ab.tmp"]
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["aug", f".aug.partial-{os.getpid()}"])
    assert "left by a killed run" in capsys.readouterr().err


def test_atomic_folder_replaces_its_entries_on_success_and_leaves_nothing_on_failure(tmp_path):
    out = tmp_path / "out"
    (out / "A").mkdir(parents=True)
    (out / "A" / "old.png").write_text("old")
    (out / "manifest.csv").write_text("old")
    (out / "notes.txt").write_text("the user's")
    with pytest.raises(RuntimeError), atomic_folder(out) as tmp:
        (tmp / "manifest.csv").write_text("new")
        raise RuntimeError("killed")
    assert [p.name for p in tmp_path.iterdir()] == ["out"] and (out / "manifest.csv").read_text() == "old"
    with atomic_folder(out) as tmp:
        (tmp / "A").mkdir()
        (tmp / "A" / "new.png").write_text("new")
        (tmp / "manifest.csv").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["A", "manifest.csv", "notes.txt"]
    assert [p.name for p in (out / "A").iterdir()] == ["new.png"]
    assert (out / "manifest.csv").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_atomic_path_names_its_temporary_with_the_owner_pid(tmp_path):
    with atomic_path(tmp_path / "a.txt") as tmp:
        assert tmp.name.startswith(f".a.txt.{os.getpid()}.") and tmp.name.endswith(".tmp")
        tmp.write_text("x")
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_atomic_folder_whole_replaces_the_folder(tmp_path):
    out = tmp_path / "out"
    (out / "00_A").mkdir(parents=True)  # a class folder the new output does not have
    with atomic_folder(out, whole=True) as tmp:
        (tmp / "01_B").mkdir()
    assert [p.name for p in out.iterdir()] == ["01_B"]
