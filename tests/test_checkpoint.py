"""The background checkpoint writer: a host snapshot, an atomic file, errors raised on the next call."""

from __future__ import annotations

import pytest
import torch

from lookahead.train import checkpoint


def test_the_file_holds_the_state_at_save_time_not_later_changes(tmp_path):
    weights = torch.zeros(1000)
    writer = checkpoint.Writer()
    writer.save(tmp_path / "last.pt", {"model": {"w": weights}, "step": [1, (2, weights)]})
    weights.add_(1)  # training goes on while the file is written
    writer.wait()
    loaded = checkpoint.load(tmp_path / "last.pt")
    assert torch.equal(loaded["model"]["w"], torch.zeros(1000))
    assert loaded["step"][0] == 1 and torch.equal(loaded["step"][1][1], torch.zeros(1000))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left


def test_a_failed_write_raises_at_the_next_call_and_keeps_the_previous_file(tmp_path, monkeypatch):
    writer = checkpoint.Writer()
    writer.save(tmp_path / "last.pt", {"step": 1})
    writer.wait()

    def full_disk(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    writer.save(tmp_path / "last.pt", {"step": 2})
    with pytest.raises(OSError, match=r"^cannot write .*last\.pt: the disk is full$"):
        writer.wait()
    writer.wait()  # the error is raised once
    monkeypatch.undo()
    assert checkpoint.load(tmp_path / "last.pt") == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]
