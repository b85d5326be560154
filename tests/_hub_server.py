"""An in-memory HTTP server that speaks enough of the Hugging Face Hub protocol for tests.

The real ``huggingface_hub`` client (and everything built on it: ``diffusers``' ``push_to_hub`` and
``from_pretrained``, ``snapshot_download``, ...) can push to and load from this server on 127.0.0.1, so the
project's Hub code paths run for real without a network. Point the client at it with
``HF_ENDPOINT=<server.url>`` *before* ``huggingface_hub`` is imported (see ``tests/conftest.py``).

Routes (``{type}`` is ``models``, ``datasets`` or ``spaces``; the file routes of datasets and spaces carry a
``datasets/`` or ``spaces/`` prefix):

==========================================================  ====================================================
``POST /api/repos/create``                                  200, or 409 (with ``url``) when the repo exists
``POST /api/validate-yaml``                                 always valid: no YAML parser in the stdlib
``GET  /api/{type}/{repo}[/revision/{rev}]``                repo info: ``sha``, ``siblings`` (``?blobs=true``
                                                            adds ``size`` and ``blobId``), ...
``GET  /api/{type}/{repo}/tree/{rev}[/{path}]``             ``?recursive=true`` lists the whole subtree
``POST /api/{type}/{repo}/preupload/{rev}``                 every file is ``uploadMode: "regular"``
``POST /api/{type}/{repo}/commit/{rev}``                    NDJSON: ``header``, ``file``, ``deletedFile``,
                                                            ``deletedFolder``; answers a new 40-hex commit sha
``HEAD|GET /{repo}/resolve/{rev}/{path}``                   ``X-Repo-Commit``, ``ETag``, ``Content-Length``
==========================================================  ====================================================

Errors carry the ``X-Error-Code`` header the client turns into typed exceptions (``RepoNotFound``,
``RevisionNotFound``, ``EntryNotFound``) and a JSON body ``{"error": ...}``. Unknown routes answer 404 JSON.
Write routes need an ``Authorization: Bearer ...`` header (any token; set ``HF_TOKEN``), like the Hub.

Deliberate simplifications: no LFS or Xet (preupload never asks for them), no pull requests, no pagination
of tree listings, no ``.gitignore`` handling, and a new repo starts with an empty commit (the Hub adds a
``.gitattributes`` file). Each commit is an immutable snapshot, so older commit shas stay downloadable.

Run as a script to serve from another process: ``python tests/_hub_server.py --port 0`` prints the URL on
its first line of output and serves until interrupted (SIGINT or SIGTERM).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import itertools
import json
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

#: Prefix of a repository's web and file URLs, per repo type (as in ``huggingface_hub.constants``).
REPO_URL_PREFIXES: Mapping[str, str] = {"model": "", "dataset": "datasets/", "space": "spaces/"}
_API_REPO_TYPES: Mapping[str, str] = {"models": "model", "datasets": "dataset", "spaces": "space"}
_URL_PREFIX_REPO_TYPES: Mapping[str, str] = {"datasets": "dataset", "spaces": "space"}

DEFAULT_BRANCH = "main"
DEFAULT_USERNAME = "local-user"


def git_blob_sha1(data: bytes) -> str:
    """Return the git object id of ``data`` stored as a blob, as the Hub reports it for regular files."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _iso(moment: datetime) -> str:
    """Format a timestamp the way the Hub does (``2024-01-31T12:00:00.000000Z``)."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class HubError(Exception):
    """An error answer: HTTP status, message, and the ``X-Error-Code`` the client dispatches on."""

    def __init__(
        self,
        status: int,
        message: str,
        error_code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_code = error_code
        self.headers = dict(headers or {})


@dataclass(frozen=True)
class Commit:
    """An immutable snapshot of a repository: every file path and its content."""

    sha: str
    files: Mapping[str, bytes]
    date: datetime


@dataclass
class Repo:
    """A repository: its commits by sha and its branches (name -> commit sha)."""

    repo_type: str
    repo_id: str
    private: bool
    created_at: datetime
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)

    def resolve(self, revision: str) -> Commit:
        """Return the commit a branch name or a full commit sha points to."""
        commit = self.commits.get(self.branches.get(revision, revision))
        if commit is None:
            raise HubError(HTTPStatus.NOT_FOUND, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit


@dataclass(frozen=True)
class _Request:
    """A parsed request: method, decoded path segments, query parameters, headers and body.

    ``headers`` is the handler's message object, whose ``get`` ignores case (httpx sends lowercase names).
    """

    method: str
    segments: list[str]
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    body: bytes

    def flag(self, name: str) -> bool:
        """Return whether query parameter ``name`` is set to a true value (``true``, ``1``)."""
        return self.query.get(name, [""])[-1].lower() in ("1", "true")

    def json(self) -> Any:
        """Decode the body as JSON, answering 400 when it is not."""
        try:
            return json.loads(self.body or b"null")
        except ValueError as err:
            raise HubError(HTTPStatus.BAD_REQUEST, f"Request body is not valid JSON: {err}") from err


@dataclass
class _Response:
    """An answer to send: status, body and headers (Content-Length is added when sending)."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, payload: Any, status: int = HTTPStatus.OK) -> _Response:
        """Build a JSON answer."""
        return cls(status, json.dumps(payload).encode(), {"Content-Type": "application/json"})


class LocalHubServer:
    """In-memory Hugging Face Hub on 127.0.0.1, served from a daemon thread.

    Example::

        with LocalHubServer() as hub:
            env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_TOKEN": "hf_dummy", "HF_HUB_OFFLINE": "0"}
            subprocess.run([sys.executable, "push.py"], env=env, check=True)
            assert "scheduler/scheduler_config.json" in hub.files("org/sched")

    Attributes:
        fail_commits: while set to an HTTP status, every commit is answered with that status and changes
            nothing, so tests can exercise failed pushes. Prefer a 4xx status: the client retries 5xx answers
            to ``upload_folder`` (and so ``push_to_hub``) with exponential backoff for about 20 seconds.
        requests: ``"METHOD /path?query"`` of every request received, in order.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, username: str = DEFAULT_USERNAME) -> None:
        """Configure the server; ``port=0`` picks a free port when :meth:`start` binds."""
        self.host = host
        self.port = port
        self.username = username
        self.fail_commits: int | None = None
        self.requests: list[str] = []
        self._repos: dict[tuple[str, str], Repo] = {}
        self._lock = threading.Lock()
        self._commit_counter = itertools.count()
        self._httpd: _HubHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL of the running server, to use as ``HF_ENDPOINT`` (no trailing slash)."""
        if self._httpd is None:
            raise RuntimeError("LocalHubServer is not running: call start() first.")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> LocalHubServer:
        """Bind ``host:port`` and serve in a daemon thread; return ``self``."""
        if self._httpd is not None:
            raise RuntimeError("LocalHubServer is already running.")
        self._httpd = _HubHTTPServer((self.host, self.port), _HubRequestHandler, self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name=f"LocalHubServer:{self.url}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port; the stored repositories are kept."""
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join()
        self._httpd = self._thread = None

    def __enter__(self) -> LocalHubServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget every repository and recorded request, and clear :attr:`fail_commits`."""
        with self._lock:
            self._repos.clear()
            self.requests.clear()
            self.fail_commits = None

    # -- inspection and seeding ---------------------------------------------------------------------------------

    def repo_ids(self, repo_type: str = "model") -> list[str]:
        """Return the ids of the stored repositories of ``repo_type``, sorted."""
        with self._lock:
            return sorted(repo_id for kind, repo_id in self._repos if kind == repo_type)

    def files(self, repo_id: str, revision: str = DEFAULT_BRANCH, repo_type: str = "model") -> dict[str, bytes]:
        """Return ``{path: content}`` of a repository at ``revision`` (a branch or a commit sha).

        Raises:
            KeyError: the repository or the revision does not exist.
        """
        return dict(self._lookup(repo_id, revision, repo_type).files)

    def head(self, repo_id: str, revision: str = DEFAULT_BRANCH, repo_type: str = "model") -> str:
        """Return the commit sha that ``revision`` of a repository points to.

        Raises:
            KeyError: the repository or the revision does not exist.
        """
        return self._lookup(repo_id, revision, repo_type).sha

    def _lookup(self, repo_id: str, revision: str, repo_type: str) -> Commit:
        with self._lock:
            try:
                return self._get_repo(repo_type, repo_id).resolve(revision)
            except HubError as err:
                raise KeyError(err.message) from None

    def seed(
        self,
        repo_id: str,
        files: Mapping[str, bytes],
        repo_type: str = "model",
        summary: str = "Seed files",
    ) -> str:
        """Create the repository if needed and commit ``files`` to its main branch; return the commit sha.

        A shortcut for tests that only download: it bypasses HTTP, authentication and :attr:`fail_commits`.
        """
        with self._lock:
            if (repo_type, repo_id) not in self._repos:
                self._create(repo_type, repo_id, private=False)
            repo = self._repos[(repo_type, repo_id)]
            return self._commit(repo, DEFAULT_BRANCH, summary, added=files).sha

    # -- state changes (callers hold the lock) ------------------------------------------------------------------

    def _get_repo(self, repo_type: str, repo_id: str) -> Repo:
        repo = self._repos.get((repo_type, repo_id))
        if repo is None:
            raise HubError(HTTPStatus.NOT_FOUND, f"Repository not found: {repo_type} {repo_id}", "RepoNotFound")
        return repo

    def _create(self, repo_type: str, repo_id: str, private: bool) -> Repo:
        repo = Repo(repo_type=repo_type, repo_id=repo_id, private=private, created_at=datetime.now(timezone.utc))
        self._repos[(repo_type, repo_id)] = repo
        self._commit(repo, DEFAULT_BRANCH, "Initial commit", added={})
        return repo

    def _commit(
        self,
        repo: Repo,
        branch: str,
        summary: str,
        added: Mapping[str, bytes],
        deleted_files: Sequence[str] = (),
        deleted_folders: Sequence[str] = (),
    ) -> Commit:
        """Apply additions and deletions on top of ``branch`` (created when missing) as a new commit."""
        parent = repo.commits.get(repo.branches.get(branch, ""))
        files = dict(parent.files) if parent is not None else {}
        for path in deleted_files:
            if path not in files:
                raise HubError(
                    HTTPStatus.NOT_FOUND, f"A file with this name doesn't exist: {path}", "EntryNotFound"
                )
            del files[path]
        for folder in deleted_folders:
            prefix = folder.rstrip("/") + "/"
            if not any(path.startswith(prefix) for path in files):
                raise HubError(
                    HTTPStatus.NOT_FOUND, f"A folder with this name doesn't exist: {folder}", "EntryNotFound"
                )
            files = {path: data for path, data in files.items() if not path.startswith(prefix)}
        files.update(added)
        fingerprint = json.dumps(
            [
                repo.repo_type,
                repo.repo_id,
                parent.sha if parent else None,
                summary,
                next(self._commit_counter),
                sorted((path, git_blob_sha1(data)) for path, data in files.items()),
            ]
        )
        commit = Commit(
            sha=hashlib.sha1(fingerprint.encode()).hexdigest(), files=files, date=datetime.now(timezone.utc)
        )
        repo.commits[commit.sha] = commit
        repo.branches[branch] = commit.sha
        return commit

    # -- request handling ---------------------------------------------------------------------------------------

    def _handle(self, request: _Request) -> _Response:
        """Route a request; called from the handler threads."""
        segments = request.segments
        with self._lock:
            if segments[:1] == ["api"]:
                return self._handle_api(request, segments[1:])
            if len(segments) >= 5 and segments[0] in _URL_PREFIX_REPO_TYPES and segments[3] == "resolve":
                repo_type, segments = _URL_PREFIX_REPO_TYPES[segments[0]], segments[1:]
            elif len(segments) >= 4 and segments[2] == "resolve":
                repo_type = "model"
            else:
                raise _no_route(request)
            namespace, name, _, revision, *path = segments
            if request.method not in ("GET", "HEAD") or not path:
                raise _no_route(request)
            return self._resolve(repo_type, f"{namespace}/{name}", revision, "/".join(path))

    def _handle_api(self, request: _Request, route: list[str]) -> _Response:
        method = request.method
        if method == "POST" and route == ["repos", "create"]:
            return self._create_repo(request)
        if method == "POST" and route == ["validate-yaml"]:
            return _Response.json({"errors": [], "warnings": []})
        if len(route) < 3 or route[0] not in _API_REPO_TYPES:
            raise _no_route(request)
        repo_type, repo_id, action = _API_REPO_TYPES[route[0]], f"{route[1]}/{route[2]}", route[3:]
        if method == "GET" and not action:
            return self._repo_info(request, repo_type, repo_id, DEFAULT_BRANCH)
        if method == "GET" and len(action) == 2 and action[0] == "revision":
            return self._repo_info(request, repo_type, repo_id, action[1])
        if method == "GET" and len(action) >= 2 and action[0] == "tree":
            return self._tree(request, repo_type, repo_id, action[1], "/".join(action[2:]))
        if method == "POST" and len(action) == 2 and action[0] == "preupload":
            return self._preupload(request, repo_type, repo_id, action[1])
        if method == "POST" and len(action) == 2 and action[0] == "commit":
            return self._commit_route(request, repo_type, repo_id, action[1])
        raise _no_route(request)

    def _repo_url(self, repo_type: str, repo_id: str) -> str:
        return f"{self.url}/{REPO_URL_PREFIXES[repo_type]}{repo_id}"

    def _create_repo(self, request: _Request) -> _Response:
        _require_token(request)
        payload = request.json()
        if not isinstance(payload, dict) or not payload.get("name"):
            raise HubError(HTTPStatus.BAD_REQUEST, "Missing repository 'name'.")
        repo_type = payload.get("type") or "model"
        if repo_type not in REPO_URL_PREFIXES:
            raise HubError(HTTPStatus.BAD_REQUEST, f"Unsupported repository type: {repo_type!r}.")
        repo_id = f"{payload.get('organization') or self.username}/{payload['name']}"
        url = self._repo_url(repo_type, repo_id)
        if (repo_type, repo_id) in self._repos:
            return _Response.json(
                {"error": f"You already created this {repo_type} repo", "url": url}, HTTPStatus.CONFLICT
            )
        private = payload.get("visibility", "private" if payload.get("private") else "public") != "public"
        self._create(repo_type, repo_id, private=private)
        return _Response.json({"url": url, "name": repo_id})

    def _repo_info(self, request: _Request, repo_type: str, repo_id: str, revision: str) -> _Response:
        repo = self._get_repo(repo_type, repo_id)
        commit = repo.resolve(revision)
        siblings: list[dict[str, Any]] = []
        for path, data in sorted(commit.files.items()):
            sibling: dict[str, Any] = {"rfilename": path}
            if request.flag("blobs"):
                sibling.update(size=len(data), blobId=git_blob_sha1(data))
            siblings.append(sibling)
        return _Response.json(
            {
                "id": repo_id,
                "author": repo_id.split("/")[0],
                "sha": commit.sha,
                "createdAt": _iso(repo.created_at),
                "lastModified": _iso(commit.date),
                "private": repo.private,
                "gated": False,
                "disabled": False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "siblings": siblings,
            }
        )

    def _tree(self, request: _Request, repo_type: str, repo_id: str, revision: str, folder: str) -> _Response:
        commit = self._get_repo(repo_type, repo_id).resolve(revision)
        prefix = f"{folder.strip('/')}/" if folder.strip("/") else ""
        recursive = request.flag("recursive")
        entries: dict[str, dict[str, Any]] = {}
        for path, data in commit.files.items():
            if not path.startswith(prefix):
                continue
            parts = path[len(prefix) :].split("/")
            for depth in range(1, len(parts) if recursive else min(len(parts), 2)):
                directory = prefix + "/".join(parts[:depth])
                entries[directory] = {"type": "directory", "oid": _tree_oid(commit.files, directory), "size": 0}
            if recursive or len(parts) == 1:
                entries[path] = {"type": "file", "oid": git_blob_sha1(data), "size": len(data)}
        if prefix and not entries:
            raise HubError(
                HTTPStatus.NOT_FOUND,
                f"Folder {folder!r} not found in {repo_id} at {revision}",
                "EntryNotFound",
                {"X-Repo-Commit": commit.sha},
            )
        return _Response.json([{**entry, "path": path} for path, entry in sorted(entries.items())])

    def _writable_branch(self, request: _Request, repo_type: str, repo_id: str, revision: str) -> Repo:
        """Check what every write route needs: a token, no pull request, an existing repo and branch."""
        _require_token(request)
        if request.flag("create_pr"):
            raise HubError(HTTPStatus.BAD_REQUEST, "LocalHubServer does not support pull requests (create_pr).")
        repo = self._get_repo(repo_type, repo_id)
        if revision not in repo.branches:
            raise HubError(HTTPStatus.NOT_FOUND, f"Branch not found: {revision}", "RevisionNotFound")
        return repo

    def _preupload(self, request: _Request, repo_type: str, repo_id: str, revision: str) -> _Response:
        repo = self._writable_branch(request, repo_type, repo_id, revision)
        head = repo.resolve(revision)
        payload = request.json()
        if not isinstance(payload, dict) or not isinstance(payload.get("files"), list):
            raise HubError(HTTPStatus.BAD_REQUEST, "Expected a JSON object with a 'files' list.")
        answers = []
        for item in payload["files"]:
            path = item["path"]
            current = head.files.get(path)
            answers.append(
                {
                    "path": path,
                    "uploadMode": "regular",
                    "shouldIgnore": False,
                    # The client skips files whose remote oid equals the local one (unchanged content).
                    "oid": git_blob_sha1(current) if current is not None else None,
                }
            )
        return _Response.json({"files": answers, "commitOid": head.sha})

    def _commit_route(self, request: _Request, repo_type: str, repo_id: str, revision: str) -> _Response:
        repo = self._writable_branch(request, repo_type, repo_id, revision)
        if self.fail_commits is not None:
            raise HubError(self.fail_commits, "LocalHubServer: commit rejected on purpose (fail_commits is set).")
        summary, parent_commit = "", None
        added: dict[str, bytes] = {}
        deleted_files: list[str] = []
        deleted_folders: list[str] = []
        for number, line in enumerate(request.body.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                key, value = item["key"], item["value"]
            except (ValueError, TypeError, KeyError) as err:
                raise HubError(HTTPStatus.BAD_REQUEST, f"NDJSON line {number} is malformed: {err!r}") from err
            if key == "header":
                summary, parent_commit = value.get("summary", ""), value.get("parentCommit")
            elif key == "file":
                added[value["path"]] = _decode_content(value)
            elif key == "deletedFile":
                deleted_files.append(value["path"])
            elif key == "deletedFolder":
                deleted_folders.append(value["path"])
            else:
                raise HubError(HTTPStatus.BAD_REQUEST, f"Unsupported commit operation {key!r} (no LFS or Xet here).")
        if parent_commit is not None and parent_commit != repo.branches[revision]:
            raise HubError(
                HTTPStatus.PRECONDITION_FAILED,
                f"A commit has happened since {parent_commit}. Please refresh and try again.",
            )
        commit = self._commit(repo, revision, summary, added, deleted_files, deleted_folders)
        return _Response.json(
            {
                "success": True,
                "commitOid": commit.sha,
                "commitUrl": f"{self._repo_url(repo_type, repo_id)}/commit/{commit.sha}",
                "hookOutput": "",
            }
        )

    def _resolve(self, repo_type: str, repo_id: str, revision: str, path: str) -> _Response:
        commit = self._get_repo(repo_type, repo_id).resolve(revision)
        data = commit.files.get(path)
        if data is None:
            raise HubError(
                HTTPStatus.NOT_FOUND,
                f"Entry not found: {path} in {repo_id} at {revision}",
                "EntryNotFound",
                {"X-Repo-Commit": commit.sha},
            )
        return _Response(
            HTTPStatus.OK,
            data,
            {
                "Content-Type": "application/octet-stream",
                "ETag": f'"{git_blob_sha1(data)}"',
                "X-Repo-Commit": commit.sha,
            },
        )


def _tree_oid(files: Mapping[str, bytes], directory: str) -> str:
    """Return a stable id for the content of ``directory`` (not git's tree hash, which the client never checks)."""
    prefix = directory + "/"
    listing = sorted((path, git_blob_sha1(data)) for path, data in files.items() if path.startswith(prefix))
    return hashlib.sha1(json.dumps(listing).encode()).hexdigest()


def _decode_content(value: Mapping[str, Any]) -> bytes:
    """Decode the content of a ``file`` commit operation (base64, or UTF-8 text without ``encoding``)."""
    content = value.get("content", "")
    if value.get("encoding") != "base64":
        return content.encode()
    try:
        return base64.b64decode(content, validate=True)
    except binascii.Error as err:
        raise HubError(HTTPStatus.BAD_REQUEST, f"Invalid base64 content for {value.get('path')!r}.") from err


def _require_token(request: _Request) -> None:
    if not request.headers.get("Authorization", "").startswith("Bearer "):
        raise HubError(
            HTTPStatus.UNAUTHORIZED,
            "LocalHubServer: write requests need an 'Authorization: Bearer <token>' header (set HF_TOKEN).",
        )


def _no_route(request: _Request) -> HubError:
    return HubError(
        HTTPStatus.NOT_FOUND,
        f"LocalHubServer has no route for {request.method} /{'/'.join(request.segments)}",
    )


class _HubHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that knows the :class:`LocalHubServer` holding the state."""

    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], hub: LocalHubServer
    ) -> None:
        self.hub = hub
        super().__init__(address, handler)


class _HubRequestHandler(BaseHTTPRequestHandler):
    """Turns HTTP/1.1 requests into :class:`_Request` objects and :class:`_Response` objects back into bytes."""

    server: _HubHTTPServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: :attr:`LocalHubServer.requests` records the traffic."""

    def _serve(self) -> None:
        hub = self.server.hub
        hub.requests.append(f"{self.command} {self.path}")
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            error = HubError(HTTPStatus.LENGTH_REQUIRED, "Chunked request bodies are not supported.")
            response = _error_response(error)
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            split = urlsplit(self.path)
            request = _Request(
                method=self.command,
                segments=[unquote(segment) for segment in split.path.strip("/").split("/")],
                query=parse_qs(split.query),
                headers=self.headers,
                body=body,
            )
            try:
                response = hub._handle(request)
            except HubError as err:
                response = _error_response(err)
        self.send_response(response.status)
        for key, value in response.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)


def _error_response(err: HubError) -> _Response:
    response = _Response.json({"error": err.message}, err.status)
    response.headers.update(err.headers)
    response.headers["X-Error-Message"] = err.message
    if err.error_code is not None:
        response.headers["X-Error-Code"] = err.error_code
    return response


def main(argv: Sequence[str] | None = None) -> None:
    """Serve until SIGINT or SIGTERM; the first line of output is the server URL."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one (default)")
    parser.add_argument(
        "--fail-commits", type=int, metavar="STATUS", help="answer every commit with this HTTP status"
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    server = LocalHubServer(host=args.host, port=args.port)
    server.fail_commits = args.fail_commits
    with server:
        print(server.url, flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    sys.exit(main())
