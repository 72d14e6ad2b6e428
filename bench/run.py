"""Run named benchmarks (each is bench/<name>.py with '-' as '_'), or all of them.

python bench/run.py                 # every benchmark
python bench/run.py cli-startup     # one
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def available() -> list[str]:
    return sorted(
        p.stem.replace("_", "-")
        for p in HERE.glob("*.py")
        if not p.stem.startswith("_") and p.stem != "run"
    )


def main(argv: list[str]) -> int:
    names = argv or available()
    unknown = [n for n in names if n not in available()]
    if unknown:
        print(
            f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available())}",
            file=sys.stderr,
        )
        return 2
    failed = 0
    for name in names:
        print(f"== {name}", flush=True)
        rc = subprocess.call([sys.executable, str(HERE / f"{name.replace('-', '_')}.py")])
        failed += rc != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
