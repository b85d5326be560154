"""The Python blocks of docs/pipeline.md run as written, in order, in one namespace (in a temporary folder)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch


DOC = Path(__file__).resolve().parents[1] / "docs" / "pipeline.md"


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)


def test_docs_pipeline_snippets_run(tmp_path, monkeypatch):
    blocks = _python_blocks(DOC.read_text())
    assert len(blocks) >= 10
    monkeypatch.chdir(tmp_path)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    namespace: dict = {"__name__": "docs_pipeline"}
    try:
        for index, block in enumerate(blocks):
            try:
                exec(compile(block, f"{DOC.name}[python block {index}]", "exec"), namespace)
            except Exception as error:  # name the failing block
                pytest.fail(f"python block {index} of {DOC.name} failed: {error!r}\n{block}")
    finally:
        torch.set_num_threads(previous)
