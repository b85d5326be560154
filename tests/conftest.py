"""Shared pytest configuration and fixtures.

Hub isolation happens at import time, before any test module imports ``huggingface_hub`` (which reads its
environment once, at import):

* ``HF_HUB_OFFLINE=1`` unless already set: no test reaches the network by accident (a missing repo would
  otherwise cost about 20 s of retries against an unreachable hub);
* ``HF_HOME`` is a temporary folder for the whole session, removed at exit, so no test reads or writes the
  user's cache or token;
* ``HF_HUB_DISABLE_TELEMETRY=1``.

diffusers 0.42 passes ``local_dir_use_symlinks`` to huggingface_hub 2.4, which warns on every load from a
hub id; ``setup.cfg`` filters that ``UserWarning`` (its message quotes the argument in backticks).

Tests that push to or load from "the Hub" use :class:`_hub_server.LocalHubServer`, through two fixtures:

``local_hub`` (the robust way)
    Run the Hub client code in a fresh subprocess whose environment points at the server::

        def test_push_and_load(local_hub, tmp_path):
            local_hub.run_python("from diffusers import AmusedScheduler; "
                                 "AmusedScheduler().push_to_hub('org/sched', subfolder='scheduler')", tmp_path)
            local_hub.run_python("from diffusers import AmusedScheduler; "
                                 "AmusedScheduler.from_pretrained('org/sched', subfolder='scheduler')",
                                 tmp_path / "fresh")   # other HF_HOME: a cold cache
            assert "scheduler/scheduler_config.json" in local_hub.server.files("org/sched")

    ``local_hub.env(path)`` gives the environment alone, for ``subprocess.run`` or ``accelerate launch``.

``local_hub_in_process``
    Patch the client of this process instead (faster: no interpreter start). ``HF_ENDPOINT`` is read once
    at import, so the fixture patches what the client cached from it: ``constants.ENDPOINT`` and
    ``constants.HUGGINGFACE_CO_URL_TEMPLATE`` (downloads), ``hf_api.api.endpoint`` (the module-level
    ``HfApi`` behind ``huggingface_hub.create_repo``/``upload_folder``/..., which diffusers' ``push_to_hub``
    uses: patching the constants alone sends those calls to huggingface.co), ``constants.HF_HUB_OFFLINE``
    and ``constants.HF_HUB_CACHE``. Verified with huggingface_hub 2.4.0 and diffusers 0.42.1; a client
    upgrade may cache more, in which case the subprocess way still works.

Both fixtures share one server per session and wipe its repositories before each test.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

_SESSION_HF_HOME = tempfile.mkdtemp(prefix="jys-schedulers-hf-home-")
atexit.register(shutil.rmtree, _SESSION_HF_HOME, ignore_errors=True)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ["HF_HOME"] = _SESSION_HF_HOME
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
# An explicit hub cache would win over HF_HOME: drop it so the session cache is the temporary one.
for _name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
    os.environ.pop(_name, None)

from _hub_server import LocalHubServer  # noqa: E402  (after the environment is set)

#: Token sent to the local hub; it accepts any bearer token.
DUMMY_TOKEN = "hf_dummy"


@dataclass(frozen=True)
class LocalHub:
    """Handle on the session's :class:`LocalHubServer`, with helpers to reach it from a subprocess."""

    server: LocalHubServer

    @property
    def url(self) -> str:
        """Base URL of the server (the value of ``HF_ENDPOINT``)."""
        return self.server.url

    def env(self, home: Path) -> dict[str, str]:
        """Return a full environment for a subprocess that talks to the server.

        It is ``os.environ`` plus ``HF_ENDPOINT=<url>``, ``HF_HUB_OFFLINE=0``, ``HF_TOKEN=hf_dummy`` and
        ``HF_HOME=<home>/hf_home`` (so each ``home`` gets its own cache) and no progress bars; telemetry stays
        off through the inherited ``HF_HUB_DISABLE_TELEMETRY``.
        """
        env = {
            **os.environ,
            "HF_ENDPOINT": self.url,
            "HF_HUB_OFFLINE": "0",
            "HF_TOKEN": DUMMY_TOKEN,
            "HF_HOME": str(Path(home) / "hf_home"),
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        }
        env.pop("TRANSFORMERS_OFFLINE", None)
        return env

    def run_python(self, code: str, home: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run ``python -c code`` in ``home`` with :meth:`env`; fail the test, with its output, if it fails."""
        Path(home).mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [sys.executable, "-c", code],
            cwd=home,
            env=self.env(home),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            pytest.fail(
                f"subprocess exited with {result.returncode}\n--- stdout ---\n{result.stdout}"
                f"\n--- stderr ---\n{result.stderr}",
                pytrace=False,
            )
        return result


@pytest.fixture(scope="session")
def _local_hub_server() -> Iterator[LocalHubServer]:
    with LocalHubServer() as server:
        yield server


@pytest.fixture
def local_hub(_local_hub_server: LocalHubServer) -> LocalHub:
    """The session's local hub, emptied (no repositories, no failure switch) for this test."""
    _local_hub_server.reset()
    return LocalHub(_local_hub_server)


@pytest.fixture
def local_hub_in_process(
    local_hub: LocalHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> LocalHub:
    """Like ``local_hub``, with this process's ``huggingface_hub`` client pointed at the server.

    Downloads go to a cache under ``tmp_path``; everything is restored after the test.
    """
    from huggingface_hub import constants, hf_api

    monkeypatch.setenv("HF_TOKEN", DUMMY_TOKEN)
    monkeypatch.setattr(constants, "ENDPOINT", local_hub.url)
    monkeypatch.setattr(
        constants, "HUGGINGFACE_CO_URL_TEMPLATE", local_hub.url + "/{repo_id}/resolve/{revision}/{filename}"
    )
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf_cache"))
    monkeypatch.setattr(hf_api.api, "endpoint", local_hub.url)
    return local_hub


@pytest.fixture(autouse=True, scope="session")
def _single_torch_thread() -> Iterator[None]:
    """Run every test with one intra-op thread.

    The test models are tiny: one thread is as fast as two for them, and it keeps timings sane on a busy machine,
    where OpenMP barriers of oversubscribed threads make small ops 10-30x slower. Subprocesses get
    ``OMP_NUM_THREADS=1`` from the tests that start them.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def _fresh_accelerate_state() -> Iterator[None]:
    """Forget accelerate's process-wide singleton state after each test.

    ``Accelerator()`` stores the process layout in a shared state; a test that builds one in this process (e.g. a
    script's ``main`` run in-process) would otherwise make a later ``accelerate.debug_launcher`` test fork workers
    that believe they are a single process.
    """
    yield
    state = sys.modules.get("accelerate.state")
    if state is not None:
        state.AcceleratorState._reset_state(reset_partial_state=True)
        state.GradientState._reset_state()
