"""Where the local runner keeps outputs, run records and the cache inside the bucket.

Layout (keys under the app's root):
  runs/<run_id>/run.json                     the run record (params, task states)
  runs/<run_id>/outputs/<task>.json          an op's output, written only when it succeeded
  pipelines/<pipeline>/latest/<task>.json    the newest successful output of a task
  cache/<op>/<key>.json                      cached outputs by cache key
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ..errors import NotFoundError, StorageError, UsageError
from ..storage import Storage
from ..storage.base import connect_timeout

log = logging.getLogger("hypermodel.local")

#: the file an op's output is kept in, in its workdir, when the bucket cannot take it
KEPT_OUTPUT = "hml-output.json"


class OutputNotStoredError(StorageError):
    """An op finished, but its output could not be stored; ``kept`` is where it was saved."""

    def __init__(self, message: str, kept: Path | None) -> None:
        super().__init__(message)
        self.kept = kept


@dataclass
class Retry:
    """How storing an op's output (or the run record) retries a failing bucket: ``attempts``
    tries, waiting ``backoff`` seconds doubled after each failure up to ``max_backoff``; before
    each try the bucket's endpoint must accept a connection within ``connect_timeout``. No
    new try starts once ``deadline`` seconds have passed (a client's own retries can make one
    try long). ``$HML_STORE_ATTEMPTS``, ``$HML_STORE_BACKOFF``, ``$HML_STORE_DEADLINE`` and
    ``$HML_CONNECT_TIMEOUT`` set them."""

    attempts: int = 4
    backoff: float = 0.5
    max_backoff: float = 8.0
    connect_timeout: float = 2.0
    deadline: float = 120.0

    @classmethod
    def from_env(cls) -> Retry:
        env = os.environ
        try:
            return cls(
                attempts=max(1, int(env.get("HML_STORE_ATTEMPTS") or 4)),
                backoff=max(0.0, float(env.get("HML_STORE_BACKOFF") or 0.5)),
                deadline=max(0.0, float(env.get("HML_STORE_DEADLINE") or 120.0)),
                connect_timeout=connect_timeout(),
            )
        except ValueError as exc:
            raise UsageError(
                f"$HML_STORE_ATTEMPTS, $HML_STORE_BACKOFF and $HML_STORE_DEADLINE must be "
                f"numbers: {exc}"
            ) from None

    def delays(self) -> list[float]:
        return [min(self.backoff * 2**i, self.max_backoff) for i in range(self.attempts - 1)]


def with_retries(storage: Storage, write: Callable[[], None], what: str, retry: Retry) -> None:
    """Run ``write`` until it succeeds, at most ``retry.attempts`` times and no new try after
    ``retry.deadline`` seconds (each try is preceded by a connection check bounded by
    ``retry.connect_timeout``). Raise one StorageError line naming ``what``, the bucket, the
    tries and the last error."""
    t0 = time.monotonic()
    last = ""
    delays = retry.delays()
    tried = 0
    for attempt in range(retry.attempts):
        tried += 1
        reason = storage.unreachable(retry.connect_timeout)
        if reason is None:
            try:
                write()
                return
            except UsageError:
                raise  # an unsafe key or the like: no retry makes it right
            except Exception as exc:
                last = _one_line(exc)
        else:
            last = reason
        if attempt < len(delays):
            if time.monotonic() - t0 + delays[attempt] > retry.deadline:
                break
            log.warning(
                "cannot write %s to %s (%s); retrying in %.1fs",
                what,
                storage.url,
                last,
                delays[attempt],
            )
            time.sleep(delays[attempt])
    raise RetriesExhausted(what, storage.url, tried, time.monotonic() - t0, last)


class RetriesExhausted(StorageError):
    """Every attempt of ``with_retries`` failed."""

    def __init__(self, what: str, url: str, attempts: int, elapsed: float, last: str) -> None:
        self.detail = f"{attempts} attempt(s) over {elapsed:.1f}s; last: {last}"
        super().__init__(f"cannot write {what} to {url} ({self.detail})")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if not isinstance(exc, StorageError):
        text = f"{type(exc).__name__}: {text}"
    return text if len(text) <= 300 else text[:299] + "…"


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
    def __init__(self, storage: Storage, retry: Retry | None = None) -> None:
        self.storage = storage
        self.retry = retry or Retry.from_env()

    def save(
        self,
        run_id: str,
        pipeline: str,
        task: str,
        output: Any,
        meta: dict[str, Any],
        keep_in: Path | None = None,
    ) -> None:
        """Store an op's output record, retrying a failing bucket. When it still fails and
        ``keep_in`` is given, the record is written there (``hml-output.json``) and the
        OutputNotStoredError says where, in one line."""
        record = dumps({"output": output, "run_id": run_id, "task": task, **meta})

        def write() -> None:
            self.storage.write_bytes(f"runs/{run_id}/outputs/{task}.json", record)
            self.storage.write_bytes(f"pipelines/{pipeline}/latest/{task}.json", record)

        try:
            with_retries(self.storage, write, f"the output of op '{task}'", self.retry)
        except RetriesExhausted as exc:
            kept = _keep(keep_in, record) if keep_in is not None else None
            if kept is not None:
                where = f"; the output is kept at {kept}"
            elif keep_in is not None:
                where = f"; it could not be kept in {keep_in} either"
            else:
                where = ""
            raise OutputNotStoredError(
                f"op '{task}' finished, but its output could not be stored in "
                f"{self.storage.url} ({exc.detail}){where}",
                kept,
            ) from None

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
        data = dumps(record)
        with_retries(
            self.storage,
            lambda: self.storage.write_bytes(f"runs/{run_id}/run.json", data),
            f"the record of run '{run_id}'",
            self.retry,
        )


def _keep(directory: Path, record: bytes) -> Path | None:
    """Write ``record`` to ``directory/hml-output.json``; None if the disk refuses too."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / KEPT_OUTPUT
        tmp = path.with_name(f".{KEPT_OUTPUT}.tmp")
        tmp.write_bytes(record)
        os.replace(tmp, path)
        return path
    except OSError as exc:
        log.warning("cannot keep the output in %s either: %s", directory, exc)
        return None
