"""code-digest: what the cache key's code digest costs (hypermodel.provenance.code_digest).

Each measurement runs in a fresh process: "cold" is the first digest (every file of the
package read and hashed), "warm" a second one in the same process (files stat'ed only), "edit"
one after a file changed (all read again). For the demo app (5 modules) and a generated package
of 200 modules of 150 lines each. Medians of 7 processes.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from _common import PYTHON

PROBE = textwrap.dedent(
    """
    import importlib, os, sys, time
    from hypermodel.provenance import code_digest
    module = importlib.import_module(sys.argv[1])
    fn = getattr(module, sys.argv[2])
    t0 = time.perf_counter(); code_digest(fn); cold = time.perf_counter() - t0
    t0 = time.perf_counter(); code_digest(fn); warm = time.perf_counter() - t0
    path = sys.argv[3]
    with open(path, "a") as fh:
        fh.write("# edited\\n")
    t0 = time.perf_counter(); code_digest(fn); edit = time.perf_counter() - t0
    print(cold, warm, edit)
    """
)

BODY = "\n".join(f"def helper_{i}(x):\n    return x * {i} + {i}\n\n" for i in range(50))


def make_package(root: Path, modules: int) -> Path:
    pkg = root / "bigapp"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    for i in range(modules):
        where = pkg / "sub" if i % 2 else pkg
        (where / f"mod_{i:03d}.py").write_text(BODY)
    (pkg / "ops.py").write_text("def train(x: int = 1) -> int:\n    return x\n")
    return pkg


def measure(module: str, attr: str, edit: Path, pythonpath: str, runs: int = 7) -> list[float]:
    samples: list[list[float]] = []
    for _ in range(runs):
        original = edit.read_text()
        out = subprocess.run(
            [PYTHON, "-c", PROBE, module, attr, str(edit)],
            env={"PYTHONPATH": pythonpath, "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            check=True,
        )
        edit.write_text(original)
        samples.append([float(v) for v in out.stdout.split()])
    return [statistics.median(s[k] for s in samples) for k in range(3)]


def main() -> int:
    import wines.pipeline

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        demo_src = Path(wines.pipeline.__file__).parent
        copy = root / "demo" / "wines"
        copy.mkdir(parents=True)
        for f in demo_src.glob("*.py"):
            (copy / f.name).write_text(f.read_text())
        demo = measure("wines.pipeline", "train", copy / "data.py", str(root / "demo"))
        pkg = make_package(root / "big", 200)
        big = measure("bigapp.ops", "train", pkg / "mod_008.py", str(root / "big"))
        size = sum(f.stat().st_size for f in pkg.rglob("*.py")) / 1e3
    print(f"{'package':<28}{'cold ms':>10}{'warm ms':>10}{'edit ms':>10}")
    for label, (cold, warm, edit) in (
        ("demo (5 modules)", demo),
        (f"200 modules, {size:.0f} kB", big),
    ):
        print(f"{label:<28}{cold * 1e3:>10.2f}{warm * 1e3:>10.2f}{edit * 1e3:>10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
