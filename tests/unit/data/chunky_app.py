"""The "chunky" app: two sources and a one-to-one task over 16 chunks, whose Kubeflow form is
a fan-out (``fan_out`` pods, each running its share of the chunks) and a publish pod.

Run as ``python -m tests.unit.data.chunky_app`` (from the repository root) it is the app's
console script, as the image would have it, over the root in ``$HML_ROOT``: what the replayed
pods of the compiled pipeline run.
"""

from __future__ import annotations

import os
from pathlib import Path

from hypermodel import hml
from hypermodel.data.dataset import Dataset

from .test_tasks import REPO, Join, Label, LoadLabels, LoadNums, N, Num, Row

# Fixed, so that the datasets' .def (and so their checksums) do not depend on when they were
# written: two runs of the pipeline, in two roots, publish identical datasets.
CREATED = "2024-01-01T00:00:00"


def make_app(root: Path, fan_out: int = 16) -> tuple[hml.HmlApp, Dataset]:
    app = hml.HmlApp("chunky", image_url="registry.example/chunky:1", root=str(root))
    nums = Dataset(Num, root, name="nums", repoData=REPO)
    labels = Dataset(Label, root, name="labels", repoData=REPO)
    rows = Dataset(Row, root, name="rows", repoData=REPO)

    @hml.pipeline(app.pipelines)
    def chunky() -> None:
        LoadNums(N, outputDataset=nums, creationTime=CREATED)()
        LoadLabels(outputDataset=labels, creationTime=CREATED)()
        Join(
            [nums, labels],
            rows,
            loadedInputs=[labels],
            workers=4,
            creationTime=CREATED,
            fan_out=fan_out,
        )()

    return app, rows


def main() -> None:
    app, _rows = make_app(Path(os.environ["HML_ROOT"]), int(os.environ.get("CHUNKY_FAN_OUT", "16")))
    app.start()


if __name__ == "__main__":
    main()
