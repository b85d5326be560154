# Copyright 2026 The jys-schedulers authors. Licensed under the Apache License, Version 2.0.
"""Resumable calibration state: a JSON file written atomically after every unit of work.

The file holds ``{"format": 1, "fingerprint": {...}, "progress": {...}}``. The fingerprint records every argument that
changes the statistics (scheduler process and noise schedule, data hash, seed, batch size, objective, search,
candidates, line-search settings, top-k); a run whose fingerprint differs refuses to resume. The requested step counts
are not part of it: the state holds statistics (DP sums, solved intervals), from which any step count is derived, so a
finished state can serve more step counts without new model calls. Floats are stored with ``repr`` (exact in JSON).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

from ..io_utils import atomic_write_text


STATE_FORMAT = 1


def tensor_digest(tensor: torch.Tensor) -> str:
    """SHA-256 of a tensor's shape, dtype and contents (identifies the calibration data)."""
    data = tensor.detach().cpu().contiguous()
    digest = hashlib.sha256(f"{tuple(data.shape)}|{data.dtype}|".encode())
    digest.update(data.numpy().tobytes())
    return digest.hexdigest()


class CalibrationState:
    """Load / save one calibration's progress.

    Args:
        path (`str` or `os.PathLike`, *optional*): the state file; ``None`` disables persistence.
        fingerprint (`dict`): JSON-serialisable arguments that must match to resume.
        writer (`bool`): whether this process writes the file (only the main process does).
    """

    def __init__(self, path: str | os.PathLike | None, fingerprint: dict[str, Any], writer: bool = True):
        self.path = None if path is None else Path(path)
        self.fingerprint = json.loads(json.dumps(fingerprint))  # normalised (tuples -> lists)
        self.writer = writer

    def load(self) -> dict[str, Any] | None:
        """The saved progress, ``None`` when there is no file; `ValueError` if it belongs to other arguments."""
        if self.path is None or not self.path.exists():
            return None
        try:
            saved = json.loads(self.path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"`state_path` {str(self.path)!r} is not a readable calibration state: {err}") from None
        if not isinstance(saved, dict) or saved.get("format") != STATE_FORMAT or "progress" not in saved:
            raise ValueError(f"`state_path` {str(self.path)!r} is not a calibration state of format {STATE_FORMAT}.")
        old = saved.get("fingerprint", {})
        if old != self.fingerprint:
            keys = sorted(k for k in set(old) | set(self.fingerprint) if old.get(k) != self.fingerprint.get(k))
            detail = ", ".join(f"{k}: saved {old.get(k)!r} vs now {self.fingerprint.get(k)!r}" for k in keys[:6])
            raise ValueError(
                f"`state_path` {str(self.path)!r} was created with different calibration arguments ({detail}); "
                "use another `state_path` or delete the file to start over."
            )
        return saved["progress"]

    def save(self, progress: dict[str, Any]) -> None:
        """Write ``progress`` atomically (temporary file in the same folder, then ``os.replace``)."""
        if self.path is None or not self.writer:
            return
        payload = json.dumps({"format": STATE_FORMAT, "fingerprint": self.fingerprint, "progress": progress})
        atomic_write_text(self.path, payload)


__all__ = ["STATE_FORMAT", "tensor_digest", "CalibrationState"]
