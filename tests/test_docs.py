"""The Python blocks of the README and the docs pages run as written, in order, in one namespace per page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["README.md", "docs/method.md", "docs/calibration.md", "docs/pipeline.md", "docs/training.md"]


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)


@pytest.mark.parametrize("page", PAGES)
def test_python_blocks_run(page, tmp_path, monkeypatch):
    path = ROOT / page
    blocks = python_blocks(path.read_text())
    assert blocks, f"{page} has no python block"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": f"docs:{page}"}
    for index, block in enumerate(blocks):
        try:
            exec(compile(block, f"{page}[python block {index}]", "exec"), namespace)
        except Exception as error:  # name the failing block
            pytest.fail(f"python block {index} of {page} failed: {error!r}\n{block}")


def test_readme_test_command_is_the_ci_command():
    """The README's second command and the command `.ci/run` executes are the same."""
    readme = (ROOT / "README.md").read_text()
    first_block = re.search(r"^```bash\n(.*?)^```", readme, flags=re.DOTALL | re.MULTILINE).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert len(commands) == 2 and "scripts/demo.py" in commands[0]
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1].strip()
    assert commands[1] == ci == "python -m pytest -q"
