"""bench task-memory: peak memory of a one-to-one task's workers as the chunk count grows.

Writes 200,000 objects of the ``record`` shape into datasets of 16, 256 and 4096 chunks, then
runs the bench's one-to-one task over each with 2 workers, each run in a fresh process: the
peak resident set of that process and of its largest worker (``getrusage``; a forked worker's
figure includes the pages it shares with its parent). Bounded memory means the worker's peak
does not grow with the chunk count.

    python bench/task_memory.py [--objects 200000] [--chunks 16,256,4096]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

BENCH = "task-memory"


def write(root: str, chunks: int, objects: int) -> None:
    from _shapes import SHAPES
    from tasks import REPO

    from hypermodel.data import Dataset

    shape = SHAPES["record"]
    ds = Dataset(shape.declared, root, "bench", "main", "records", chunkCount=chunks, repoData=REPO)  # type: ignore[arg-type]
    with ds.open("w") as writer:
        for obj in shape.make(objects):
            writer.append(obj)


def run(root: str, chunks: int) -> dict[str, float]:
    from _shapes import SHAPES
    from tasks import REPO, TASKS, Scored

    from hypermodel.data import Dataset

    shape = SHAPES["record"]
    source = Dataset(
        shape.declared, root, "bench", "main", "records", chunkCount=chunks, repoData=REPO
    )  # type: ignore[arg-type]
    out = Dataset(Scored, root, "bench", "main", "scored", chunkCount=chunks, repoData=REPO)  # type: ignore[arg-type]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    TASKS["record"]([source], out, workers=2, progress=False)()
    return {
        "parent_before_mib": before / 1024,
        "parent_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "worker_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=200_000)
    parser.add_argument("--chunks", default="16,256,4096")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        step, root, chunks = args.child
        if step == "write":
            write(root, int(chunks), args.objects)
        else:
            print(json.dumps(run(root, int(chunks))))
        return 0
    for chunks in [int(c) for c in args.chunks.split(",")]:
        with tempfile.TemporaryDirectory(prefix="hml-bench-mem-") as root:
            me = [sys.executable, __file__, "--objects", str(args.objects), "--child"]
            subprocess.run([*me, "write", root, str(chunks)], check=True)
            done = subprocess.run(
                [*me, "run", root, str(chunks)], check=True, capture_output=True, text=True
            )
            figures = json.loads(done.stdout.strip().splitlines()[-1])
        tag = f"{BENCH} [{chunks} chunks, {args.objects} objects, 2 workers]"
        print(
            f"{tag}: largest worker peak RSS {figures['worker_mib']:.1f} MiB; parent peak "
            f"{figures['parent_mib']:.1f} MiB (before the task {figures['parent_before_mib']:.1f})",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
