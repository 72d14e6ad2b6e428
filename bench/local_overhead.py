"""local-overhead: 20 chained no-op ops, our run-all vs kfp.local's SubprocessRunner.

Both run as fresh processes (interpreter start included) on the same 20 Python functions.
Target: ours >= 20x less wall time.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from _common import PYTHON, line, median_command, ratio

N = 20

OURS = f"""
from hypermodel import hml

app = hml.HmlApp(name="overhead")

@hml.op()
def noop(i: int) -> int:
    return i + 1

@hml.pipeline(app.pipelines)
def chain():
    prev = noop(i=0)
    for _ in range({N - 1}):
        prev = noop(i=prev)

if __name__ == "__main__":
    app.start()
"""

KFP = f"""
import sys
from kfp import dsl, local

local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=sys.argv[1])

@dsl.component
def noop(i: int) -> int:
    return i + 1

@dsl.pipeline
def chain():
    prev = noop(i=0)
    for _ in range({N - 1}):
        prev = noop(i=prev.output)

chain()
"""


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        ours_py, kfp_py = Path(tmp) / "ours.py", Path(tmp) / "kfp_local.py"
        ours_py.write_text(OURS)
        kfp_py.write_text(KFP)
        env_root = str(Path(tmp) / "root")
        ours_cmd = [PYTHON, str(ours_py), "--root", env_root, "pipelines", "chain", "run-all", "-q"]
        ours = median_command(ours_cmd, runs=7)
        inline = median_command([*ours_cmd, "--workers", "0"], runs=7)
        try:
            import kfp  # noqa: F401
        except ImportError:
            print("local-overhead: kfp not installed; install hypermodel[kubeflow] to compare")
            line("local-overhead", f"ours run-all ({N} ops)", ours, runs=7)
            return 0
        peer = median_command([PYTHON, str(kfp_py), str(Path(tmp) / "kfp-root")], runs=3, warmup=0)
    line("local-overhead", f"ours run-all, {N} chained no-op ops, process pool", ours, runs=7)
    line("local-overhead", f"ours run-all, {N} chained no-op ops, --workers 0", inline, runs=7)
    line("local-overhead", f"kfp.local SubprocessRunner, {N} chained no-op ops", peer, runs=3)
    ratio("local-overhead", "ours (pool)", "kfp.local", peer / ours, ">= 20x less wall time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
