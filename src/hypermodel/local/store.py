"""Where the local runner keeps outputs, run records and the cache inside the bucket.

Layout (keys under the app's root):
  runs/<run_id>/run.json                     the run record (params, task states)
  runs/<run_id>/outputs/<task>.json          an op's output, written only when it succeeded
  pipelines/<pipeline>/latest/<task>.json    the newest successful output of a task
  cache/<op>/<key>.json                      cached outputs by cache key
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from ..errors import NotFoundError, UsageError
from ..storage import Storage


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY)


def to_json_value(value: Any, where: str) -> Any:
    """Normalise an op's return value to plain JSON, or raise naming the op."""
    try:
        return orjson.loads(dumps(value))
    except TypeError as exc:
        raise UsageError(
            f"{where} returned a {type(value).__name__} that cannot be stored as JSON ({exc}); "
            "return int, float, bool, str, list or dict (store big data in a dataset and return its name)"
        ) from None


def cache_key(op_fingerprint: str, arguments: dict[str, Any], upstream: dict[str, Any]) -> str:
    payload = dumps({"code": op_fingerprint, "args": arguments, "upstream": upstream})
    return hashlib.sha256(payload).hexdigest()


class OutputStore:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def save(
        self, run_id: str, pipeline: str, task: str, output: Any, meta: dict[str, Any]
    ) -> None:
        record = dumps({"output": output, "run_id": run_id, "task": task, **meta})
        self.storage.write_bytes(f"runs/{run_id}/outputs/{task}.json", record)
        self.storage.write_bytes(f"pipelines/{pipeline}/latest/{task}.json", record)

    def latest(self, pipeline: str, task: str) -> dict[str, Any]:
        """The newest successful output record of a task; NotFoundError if it never succeeded."""
        return orjson.loads(self.storage.read_bytes(f"pipelines/{pipeline}/latest/{task}.json"))  # type: ignore[no-any-return]

    def cached(self, op: str, key: str) -> dict[str, Any] | None:
        try:
            return orjson.loads(self.storage.read_bytes(f"cache/{op}/{key}.json"))  # type: ignore[no-any-return]
        except NotFoundError:
            return None

    def put_cache(self, op: str, key: str, output: Any, run_id: str) -> None:
        self.storage.write_bytes(
            f"cache/{op}/{key}.json", dumps({"output": output, "run_id": run_id})
        )

    def save_run(self, run_id: str, record: dict[str, Any]) -> None:
        self.storage.write_bytes(f"runs/{run_id}/run.json", dumps(record))
