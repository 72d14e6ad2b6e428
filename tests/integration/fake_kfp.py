"""A local HTTP server answering the Kubeflow Pipelines v2beta1 API as ``kfp.Client`` uses it
(pytest-httpserver); every request is recorded for the tests to check. Shared by the deploy
tests and the seed corpus."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

API = "/apis/v2beta1"
TOKEN = "tok-never-printed-123"


@dataclass
class Sent:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    auth: str


@dataclass
class FakeKfp:
    """Just enough of the v2beta1 API, with state, so that repeated deploys can be observed."""

    sent: list[Sent] = field(default_factory=list)
    pipelines: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    experiments: dict[str, dict[str, Any]] = field(default_factory=dict)
    recurring: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    uploads: list[str] = field(default_factory=list)
    fail_on: str | None = None
    counter: int = 0

    def next_id(self, kind: str) -> str:
        self.counter += 1
        return f"{kind}-{self.counter}"

    def handle(self, request: Request) -> Response:
        query = {k: v[0] for k, v in parse_qs(request.query_string.decode()).items()}
        body: Any = None
        if request.files:
            self.uploads.append(request.files["uploadfile"].read().decode())
            body = "<multipart uploadfile>"
        elif request.data:
            body = json.loads(request.data)
        sent = Sent(
            request.method, request.path, query, body, request.headers.get("Authorization", "")
        )
        self.sent.append(sent)
        if self.fail_on and re.search(self.fail_on, f"{request.method} {request.path}"):
            return Response(
                json.dumps({"error": "boom", "message": "database is down"}),
                500,
                content_type="application/json",
            )
        payload = self.route(sent)
        return Response(json.dumps(payload), 200, content_type="application/json")

    def route(self, s: Sent) -> dict[str, Any]:
        m, p = s.method, s.path.removeprefix(API)
        if p == "/healthz":
            return {"multi_user": False}
        if m == "GET" and p == "/pipelines":
            name = json.loads(s.query["filter"])["predicates"][0]["stringValue"]
            return {"pipelines": [x for x in self.pipelines.values() if x["display_name"] == name]}
        if m == "POST" and p == "/pipelines/upload":
            pid = self.next_id("pipeline")
            self.pipelines[pid] = {"pipeline_id": pid, "display_name": s.query["name"]}
            self.versions[pid] = [
                {
                    "pipeline_id": pid,
                    "pipeline_version_id": self.next_id("version"),
                    "display_name": s.query["name"],
                }
            ]
            return self.pipelines[pid]
        if m == "POST" and p == "/pipelines/upload_version":
            pid = s.query["pipelineid"]
            version = {
                "pipeline_id": pid,
                "pipeline_version_id": self.next_id("version"),
                "display_name": s.query["name"],
            }
            self.versions[pid].append(version)
            return version
        if m == "GET" and (match := re.fullmatch(r"/pipelines/([^/]+)/versions", p)):
            return {
                "pipeline_versions": list(reversed(self.versions[match.group(1)]))[
                    : int(s.query.get("page_size", 10))
                ]
            }
        if m == "GET" and p == "/experiments":
            name = json.loads(s.query["filter"])["predicates"][0]["stringValue"]
            return {
                "experiments": [e for e in self.experiments.values() if e["display_name"] == name]
            }
        if m == "POST" and p == "/experiments":
            eid = self.next_id("experiment")
            self.experiments[eid] = {"experiment_id": eid, "display_name": s.body["display_name"]}
            return self.experiments[eid]
        if m == "POST" and p == "/runs":
            rid = self.next_id("run")
            self.runs[rid] = {**s.body, "run_id": rid}
            return self.runs[rid]
        if m == "GET" and p == "/recurringruns":
            found = [
                r
                for r in self.recurring.values()
                if r["experiment_id"] == s.query.get("experiment_id")
            ]
            return {
                "recurringRuns": found,
                "total_size": len(found),
            }  # the wire name, as the real server
        if m == "POST" and p == "/recurringruns":
            rid = self.next_id("recurring")
            self.recurring[rid] = {**s.body, "recurring_run_id": rid}
            return self.recurring[rid]
        if m == "DELETE" and (match := re.fullmatch(r"/recurringruns/([^/]+)", p)):
            self.recurring.pop(match.group(1))
            return {}
        raise AssertionError(f"unexpected request {m} {s.path}")

    def calls(self) -> list[str]:
        return [f"{s.method} {s.path}" for s in self.sent]


@pytest.fixture
def kfp(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeKfp:
    monkeypatch.setenv(
        "HOME", str(tmp_path / "home")
    )  # kfp.Client reads ~/.config/kfp/context.json
    fake = FakeKfp()
    httpserver.expect_request(re.compile(r"^/apis/.*")).respond_with_handler(fake.handle)
    return fake
