"""A small Hugging Face Hub on 127.0.0.1 for tests: the part of the API the real client calls for
create_repo, create_branch, upload_folder, file_exists, hf_hub_download and model_info.

Repos live in memory as commits (path -> bytes). All uploads are "regular" (inline base64), which the
real client supports for any file; LFS is not implemented. Tokens: ``WRITE_TOKEN`` may write,
``READ_TOKEN`` may only read; private repos need either. ``server.fail_next[name] = status`` makes the
next request to endpoint ``name`` ("commit", "preupload", "resolve", "create") answer that status.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

WRITE_TOKEN = "hf_test_write"
READ_TOKEN = "hf_test_read"


@dataclass
class Repo:
    private: bool
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)  # sha -> files
    branches: dict[str, str] = field(default_factory=dict)  # branch -> sha


class HubState:
    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.fail_next: dict[str, int] = {}
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self._counter = 0

    def new_sha(self, repo_id: str) -> str:
        self._counter += 1
        return hashlib.sha1(f"{repo_id}:{self._counter}".encode()).hexdigest()

    def create(self, repo_id: str, private: bool) -> bool:
        if repo_id in self.repos:
            return False
        repo = Repo(private)
        sha = self.new_sha(repo_id)
        repo.commits[sha] = {".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"}
        repo.branches["main"] = sha
        self.repos[repo_id] = repo
        return True

    def resolve(self, repo: Repo, revision: str) -> str | None:
        if revision in repo.branches:
            return repo.branches[revision]
        return revision if revision in repo.commits else None


class Handler(BaseHTTPRequestHandler):
    server: HubServer

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    # -- helpers ------------------------------------------------------------------------------------
    @property
    def state(self) -> HubState:
        return self.server.state

    def _token(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        return auth[len("Bearer ") :] if auth.startswith("Bearer ") else None

    def _send(self, status: int, body: bytes | dict | list = b"", headers: dict | None = None) -> None:
        if isinstance(body, dict | list):
            body = json.dumps(body).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, code: str | None, message: str) -> None:
        headers = {"X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        self._send(status, {"error": message}, headers)

    def _injected(self, name: str) -> bool:
        status = self.state.fail_next.pop(name, None)
        if status is None:
            return False
        self._error(status, None, f"injected failure of {name}")
        return True

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _can_write(self) -> bool:
        token = self._token()
        if token is None or token not in (WRITE_TOKEN, READ_TOKEN):
            self._error(401, None, "Invalid credentials in Authorization header")
            return False
        if token != WRITE_TOKEN:
            self._error(403, None, "You don't have the rights to write to this repo")
            return False
        return True

    def _readable_repo(self, repo_id: str) -> Repo | None:
        repo = self.state.repos.get(repo_id)
        if repo is None or (repo.private and self._token() not in (WRITE_TOKEN, READ_TOKEN)):
            # the real Hub answers 401 + RepoNotFound for missing and unauthorised alike
            self._error(401 if self._token() is None else 404, "RepoNotFound", "Repository not found")
            return None
        return repo

    # -- routes -------------------------------------------------------------------------------------
    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        path = unquote(urlparse(self.path).path)
        self.state.requests.append((self.command, path))
        if m := re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path):
            return self._resolve(*m.groups())
        if m := re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?", path):
            return self._model_info(m.group(1), m.group(2) or "main")
        if m := re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)(?:/.*)?", path):
            return self._tree(*m.groups())
        self._error(404, None, f"no route {path}")

    def do_POST(self) -> None:
        path = unquote(urlparse(self.path).path)
        self.state.requests.append((self.command, path))
        body = self._body()
        with self.state.lock:
            if path == "/api/repos/create":
                return self._create(json.loads(body or b"{}"))
            if path == "/api/validate-yaml":
                return self._send(200, {"errors": [], "warnings": []})
            if m := re.fullmatch(r"/api/models/([^/]+/[^/]+)/branch/([^/]+)", path):
                return self._branch(*m.groups())
            if m := re.fullmatch(r"/api/models/([^/]+/[^/]+)/preupload/([^/]+)", path):
                return self._preupload(m.group(1), json.loads(body))
            if m := re.fullmatch(r"/api/models/([^/]+/[^/]+)/commit/([^/]+)", path):
                return self._commit(m.group(1), m.group(2), body)
        self._error(404, None, f"no route {path}")

    def _create(self, payload: dict) -> None:
        if self._injected("create") or not self._can_write():
            return
        repo_id = f"{payload.get('organization')}/{payload['name']}"
        url = f"{self.server.url}/{repo_id}"
        private = payload.get("visibility") == "private" or bool(payload.get("private"))
        if not self.state.create(repo_id, private):
            return self._send(409, {"error": "You already created this model repo", "url": url})
        self._send(200, {"url": url, "name": repo_id})

    def _branch(self, repo_id: str, branch: str) -> None:
        if not self._can_write() or (repo := self._readable_repo(repo_id)) is None:
            return
        if branch in repo.branches:
            return self._error(409, None, "Reference already exists")
        repo.branches[branch] = repo.branches["main"]
        self._send(200, {})

    def _preupload(self, repo_id: str, payload: dict) -> None:
        if self._injected("preupload") or not self._can_write():
            return
        if self._readable_repo(repo_id) is None:
            return
        files = [
            {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in payload["files"]
        ]
        self._send(200, {"files": files, "commitOid": None})

    def _commit(self, repo_id: str, revision: str, body: bytes) -> None:
        if self._injected("commit") or not self._can_write():
            return
        repo = self._readable_repo(repo_id)
        if repo is None:
            return
        if revision not in repo.branches:
            return self._error(404, "RevisionNotFound", "Invalid rev id")
        files = dict(repo.commits[repo.branches[revision]])
        summary = ""
        for line in body.splitlines():
            item = json.loads(line)
            value = item["value"]
            if item["key"] == "header":
                summary = value.get("summary", "")
            elif item["key"] == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif item["key"] == "deletedFile":
                files.pop(value["path"], None)
            else:
                return self._error(400, None, f"unsupported commit operation {item['key']}")
        sha = self.state.new_sha(repo_id)
        repo.commits[sha] = files
        repo.branches[revision] = sha
        self._send(
            200,
            {
                "commitUrl": f"{self.server.url}/{repo_id}/commit/{sha}",
                "commitOid": sha,
                "commitMessage": summary,
                "success": True,
                "pullRequestUrl": None,
            },
        )

    def _resolve(self, repo_id: str, revision: str, filename: str) -> None:
        if self._injected("resolve") or (repo := self._readable_repo(repo_id)) is None:
            return
        sha = self.state.resolve(repo, revision)
        if sha is None:
            return self._error(404, "RevisionNotFound", "Invalid rev id")
        data = repo.commits[sha].get(filename)
        if data is None:
            return self._error(404, "EntryNotFound", "Entry not found")
        etag = hashlib.sha256(data).hexdigest()
        self._send(
            200, data, {"X-Repo-Commit": sha, "ETag": f'"{etag}"', "Content-Type": "application/octet-stream"}
        )

    def _model_info(self, repo_id: str, revision: str) -> None:
        if (repo := self._readable_repo(repo_id)) is None:
            return
        sha = self.state.resolve(repo, revision)
        if sha is None:
            return self._error(404, "RevisionNotFound", "Invalid rev id")
        siblings = [{"rfilename": name} for name in sorted(repo.commits[sha])]
        self._send(
            200,
            {
                "id": repo_id,
                "modelId": repo_id,
                "sha": sha,
                "private": repo.private,
                "siblings": siblings,
                "tags": [],
                "downloads": 0,
                "likes": 0,
            },
        )

    def _tree(self, repo_id: str, revision: str) -> None:
        if (repo := self._readable_repo(repo_id)) is None:
            return
        sha = self.state.resolve(repo, revision)
        if sha is None:
            return self._error(404, "RevisionNotFound", "Invalid rev id")
        entries = [
            {"type": "file", "path": name, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
            for name, data in sorted(repo.commits[sha].items())
        ]
        self._send(200, entries)


class HubServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.state = HubState()
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def __enter__(self) -> HubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        repo = self.state.repos[repo_id]
        return repo.commits[self.state.resolve(repo, revision)]
