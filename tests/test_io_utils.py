"""Atomic writes: complete files and folders appear at once; failures leave the previous content."""

import pytest

from jys_schedulers.io_utils import atomic_save_folder, atomic_write_bytes, atomic_write_text


def test_atomic_write_creates_parents_and_replaces(tmp_path):
    path = tmp_path / "a" / "b.json"
    atomic_write_text(path, "one")
    atomic_write_bytes(path, b"two")
    assert path.read_text() == "two"
    assert [p.name for p in path.parent.iterdir()] == ["b.json"], "no temporary file left behind"


def test_atomic_save_folder_swaps_whole_folders_and_keeps_the_old_one_on_failure(tmp_path):
    target = tmp_path / "scheduler"
    atomic_save_folder(target, lambda d: (d / "config.json").write_text("v1"))
    atomic_save_folder(target, lambda d: (d / "config.json").write_text("v2"))
    assert (target / "config.json").read_text() == "v2"

    def broken(folder):
        (folder / "config.json").write_text("half")
        raise RuntimeError("crash while writing")

    with pytest.raises(RuntimeError):
        atomic_save_folder(target, broken)
    assert (target / "config.json").read_text() == "v2"
    with pytest.raises(FileExistsError):
        atomic_save_folder(target, lambda d: None, overwrite=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scheduler"], "no staging folder left behind"
