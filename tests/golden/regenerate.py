"""Compile the demo pipeline with fixed settings: the golden YAML and the test share this.

`make golden` (or `python tests/golden/regenerate.py`) rewrites tests/golden/wines.yaml;
review the diff before committing it.
"""

from __future__ import annotations

import re
import sys
from dataclasses import replace
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent / "wines.yaml"
ROOT = "gs://hml-demo/wines"
IMAGE = "ghcr.io/example/wines:latest"


def normalise(text: str) -> str:
    """The kfp version that compiled the file is not part of what the golden file pins, nor
    the code digests (any edit of the demo package changes them; test_compile checks them)."""
    text = re.sub(r"(?m)^sdkVersion: .*$", "sdkVersion: kfp", text)
    return re.sub(r"(?m)^(\s+- --hml-code\n\s+- )[0-9a-f]+$", r"\1CODE-DIGEST", text)


def compile_demo() -> str:
    from wines.app import app

    from hypermodel.kubeflow import compile_pipeline

    saved = (app.settings, app.image_url)
    app.settings, app.image_url = replace(app.settings, root=ROOT), IMAGE
    try:
        return normalise(compile_pipeline(app, "wines").yaml)
    finally:
        app.settings, app.image_url = saved


def main() -> int:
    GOLDEN.write_text(compile_demo())
    print(f"wrote {GOLDEN}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
