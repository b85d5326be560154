"""Round trips of the real ``huggingface_hub`` client and diffusers through the local Hub server.

See ``tests/_hub_server.py`` for the server and ``tests/conftest.py`` for the ``local_hub`` fixtures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from email.message import Message
from pathlib import Path

import pytest
from huggingface_hub import (
    HfApi,
    constants,
    create_repo,
    delete_file,
    hf_hub_download,
    list_repo_files,
    model_info,
    snapshot_download,
    upload_file,
    upload_folder,
)
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.hf_api import RepoFolder

from _hub_server import DEFAULT_USERNAME, git_blob_sha1

SERVER_SCRIPT = Path(__file__).with_name("_hub_server.py")


def test_session_hub_cache_is_temporary() -> None:
    assert os.environ["HF_HUB_OFFLINE"]
    assert Path(constants.HF_HOME).is_relative_to(Path(os.environ["HF_HOME"]))
    assert Path(constants.HF_HUB_CACHE).is_relative_to(Path(os.environ["HF_HOME"]))
    assert Path(os.environ["HF_HOME"]).name.startswith("jys-schedulers-hf-home-")


def test_create_repo_twice_with_exist_ok(local_hub_in_process) -> None:
    first = create_repo("org/repo")
    second = create_repo("org/repo", exist_ok=True)

    assert first == second == f"{local_hub_in_process.url}/org/repo"
    assert second.repo_id == "org/repo"
    with pytest.raises(HfHubHTTPError) as excinfo:
        HfApi().create_repo("org/repo")
    assert excinfo.value.response.status_code == 409
    assert create_repo("solo").repo_id == f"{DEFAULT_USERNAME}/solo"
    assert local_hub_in_process.server.repo_ids() == [f"{DEFAULT_USERNAME}/solo", "org/repo"]


def test_writes_need_a_token(local_hub_in_process) -> None:
    with pytest.raises(HfHubHTTPError) as excinfo:
        HfApi(token=False).create_repo("org/anonymous")
    assert excinfo.value.response.status_code == 401
    assert local_hub_in_process.server.repo_ids() == []


def test_upload_file_then_download_each_commit(local_hub_in_process) -> None:
    server = local_hub_in_process.server
    create_repo("org/repo")
    first = upload_file(path_or_fileobj=b"version 1", path_in_repo="notes/a.txt", repo_id="org/repo")
    second = upload_file(path_or_fileobj=b"version 2", path_in_repo="notes/a.txt", repo_id="org/repo")

    assert len(first.oid) == len(second.oid) == 40 and first.oid != second.oid
    assert server.head("org/repo") == second.oid
    assert server.files("org/repo") == {"notes/a.txt": b"version 2"}
    assert Path(hf_hub_download("org/repo", "notes/a.txt")).read_bytes() == b"version 2"
    assert Path(hf_hub_download("org/repo", "a.txt", subfolder="notes", revision=first.oid)).read_bytes() == (
        b"version 1"
    )
    assert any(request.startswith("POST /api/models/org/repo/preupload/main") for request in server.requests)


def test_upload_folder_into_subfolder_then_snapshot_and_listing(local_hub_in_process, tmp_path: Path) -> None:
    server = local_hub_in_process.server
    folder = tmp_path / "folder"
    (folder / "nested").mkdir(parents=True)
    (folder / "scheduler_config.json").write_text('{"mask_token_id": 9}')
    (folder / "nested" / "table.bin").write_bytes(bytes(range(256)))
    create_repo("org/repo")

    commit = upload_folder(folder_path=folder, repo_id="org/repo", path_in_repo="scheduler")

    expected = {
        "scheduler/nested/table.bin": bytes(range(256)),
        "scheduler/scheduler_config.json": b'{"mask_token_id": 9}',
    }
    assert server.files("org/repo") == expected
    assert list_repo_files("org/repo") == sorted(expected)
    snapshot = Path(snapshot_download("org/repo"))
    assert snapshot.name == commit.oid
    assert {path: (snapshot / path).read_bytes() for path in expected} == expected
    assert [(entry.path, type(entry)) for entry in HfApi().list_repo_tree("org/repo")] == [("scheduler", RepoFolder)]
    info = model_info("org/repo", files_metadata=True)
    assert info.sha == commit.oid
    assert {sibling.rfilename: sibling.blob_id for sibling in info.siblings} == {
        path: git_blob_sha1(data) for path, data in expected.items()
    }

    upload_folder(folder_path=folder, repo_id="org/repo", path_in_repo="scheduler")  # unchanged: no commit
    assert server.head("org/repo") == commit.oid


def test_delete_file_and_folder(local_hub_in_process) -> None:
    files = {"keep.txt": b"k", "drop.txt": b"d", "old/a.txt": b"a", "old/deeper/b.txt": b"b"}
    local_hub_in_process.server.seed("org/repo", files)

    delete_file("drop.txt", repo_id="org/repo")
    HfApi().delete_folder("old", repo_id="org/repo")

    assert list_repo_files("org/repo") == ["keep.txt"]
    with pytest.raises(EntryNotFoundError):
        delete_file("drop.txt", repo_id="org/repo")


def test_missing_file_or_revision_raises(local_hub_in_process) -> None:
    local_hub_in_process.server.seed("org/repo", {"present.txt": b"here"})

    with pytest.raises(EntryNotFoundError):
        hf_hub_download("org/repo", "absent.txt")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download("org/repo", "present.txt", revision="no-such-branch")


def test_missing_repo_raises_repository_not_found(local_hub_in_process) -> None:
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("org/missing", "config.json")
    with pytest.raises(RepositoryNotFoundError):
        model_info("org/missing")


def test_dataset_repos_are_separate_from_models(local_hub_in_process) -> None:
    create_repo("org/data", repo_type="dataset")
    upload_file(path_or_fileobj=b"a,b\n", path_in_repo="train.csv", repo_id="org/data", repo_type="dataset")

    assert Path(hf_hub_download("org/data", "train.csv", repo_type="dataset")).read_bytes() == b"a,b\n"
    assert local_hub_in_process.server.repo_ids("dataset") == ["org/data"]
    with pytest.raises(RepositoryNotFoundError):
        model_info("org/data")


def _get_error(url: str) -> tuple[int, Message, dict]:
    """GET ``url``, which must fail; return the status, headers and JSON body of the answer."""
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(url, timeout=10)
    with excinfo.value as error:
        return error.code, error.headers, json.load(error)


def test_unknown_route_answers_json_404(local_hub) -> None:
    status, _, body = _get_error(f"{local_hub.url}/api/no-such-route")

    assert status == 404
    assert "no route for GET /api/no-such-route" in body["error"]


def test_runs_as_a_script() -> None:
    process = subprocess.Popen(
        [sys.executable, str(SERVER_SCRIPT), "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        url = process.stdout.readline().strip()
        status, headers, _ = _get_error(f"{url}/api/models/org/missing")
        assert status == 404
        assert headers["X-Error-Code"] == "RepoNotFound"
    finally:
        process.terminate()
        process.communicate(timeout=10)
    assert process.returncode == 0


_SUBPROCESS_PUSH = """
from huggingface_hub import create_repo, hf_hub_download, upload_file
create_repo("org/from-subprocess", exist_ok=True)
upload_file(path_or_fileobj=b"pushed", path_in_repo="a.txt", repo_id="org/from-subprocess")
print(open(hf_hub_download("org/from-subprocess", "a.txt")).read())
"""

_SUBPROCESS_LOAD_SCHEDULER = """
from diffusers import AmusedScheduler
print(AmusedScheduler.from_pretrained("org/sched", subfolder="scheduler").to_json_string())
"""


def test_subprocess_env_pushes_and_downloads(local_hub, tmp_path: Path) -> None:
    result = local_hub.run_python(_SUBPROCESS_PUSH, tmp_path)

    assert result.stdout.strip() == "pushed"
    assert local_hub.server.files("org/from-subprocess") == {"a.txt": b"pushed"}
    assert (tmp_path / "hf_home" / "hub" / "models--org--from-subprocess").is_dir()


def test_scheduler_push_then_load_in_process_and_in_fresh_subprocess(local_hub_in_process, tmp_path: Path) -> None:
    from diffusers import AmusedScheduler

    scheduler = AmusedScheduler(mask_token_id=9)
    scheduler.push_to_hub("org/sched", subfolder="scheduler")
    pushed = json.loads(scheduler.to_json_string())

    loaded_here = AmusedScheduler.from_pretrained("org/sched", subfolder="scheduler")
    loaded_fresh = local_hub_in_process.run_python(_SUBPROCESS_LOAD_SCHEDULER, tmp_path / "fresh")

    assert pushed["mask_token_id"] == 9
    assert json.loads(loaded_here.to_json_string()) == pushed
    assert json.loads(loaded_fresh.stdout) == pushed
    stored = local_hub_in_process.server.files("org/sched")
    assert list(stored) == ["scheduler/scheduler_config.json"]
    assert json.loads(stored["scheduler/scheduler_config.json"]) == pushed


def test_push_to_hub_raises_while_commits_fail(local_hub_in_process) -> None:
    from diffusers import AmusedScheduler

    server = local_hub_in_process.server
    server.fail_commits = 403

    with pytest.raises(HfHubHTTPError) as excinfo:
        AmusedScheduler(mask_token_id=9).push_to_hub("org/sched", subfolder="scheduler")

    assert excinfo.value.response.status_code == 403
    assert server.files("org/sched") == {}
