"""k8s/ holds the demo's manifests as `make manifests` writes them; they must not drift."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support import REPO, require_module

COMMITTED = REPO / "k8s" / "wines-inference.yaml"


def test_committed_manifests_match_a_fresh_generation() -> None:
    require_module("wines")
    env = {k: v for k, v in os.environ.items() if k != "WINES_IMAGE"}
    env["HML_ROOT"] = ".hml"  # a local root, as `make manifests` uses: nothing bucket-specific
    code = "import sys; from wines.app import main; sys.argv[0] = 'wines'; main()"
    fresh = subprocess.run(
        [sys.executable, "-c", code, "inference", "deploy", "--dry-run"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    assert fresh.returncode == 0, fresh.stderr
    assert COMMITTED.exists(), "k8s/wines-inference.yaml is missing: run `make manifests`"
    assert fresh.stdout == COMMITTED.read_text(), (
        "k8s/wines-inference.yaml is stale: run `make manifests` and commit the result"
    )


def test_committed_manifests_pass_schema_validation() -> None:
    kubernetes_validate = require_module("kubernetes_validate")
    yaml = require_module("yaml")
    docs = list(yaml.safe_load_all(COMMITTED.read_text()))
    assert [d["kind"] for d in docs][:2] == ["Deployment", "Service"]
    for doc in docs:
        kubernetes_validate.validate(doc, "1.30", strict=True)
