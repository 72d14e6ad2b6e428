"""Starting the server when an initialiser fails (no model published yet, bucket unreachable).

A pod whose server exits because ``load_model("latest")`` raised crash-loops, and its logs end
in a traceback. Instead the server comes up anyway: ``/livez`` answers 200, ``/readyz`` and
every other route answer 503 with the reason, and the initialisers are retried in the
background with exponential backoff until they succeed; then the real app takes over. With
``fail_fast`` (``inference run-prod --fail-fast``) the error is raised and the command exits.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from .app import HmlInferenceApp

log = logging.getLogger("hypermodel.serving")

WSGIApp = Callable[[dict[str, Any], Any], Iterable[bytes]]
FIRST_DELAY = 1.0  # seconds before the first retry; doubled after each failure
MAX_DELAY = 60.0


class Startup:
    """The WSGI app to serve: the Flask app once initialised, a not-ready stand-in until then."""

    def __init__(
        self,
        inference_app: HmlInferenceApp,
        *,
        fail_fast: bool = False,
        first_delay: float = FIRST_DELAY,
        max_delay: float = MAX_DELAY,
    ) -> None:
        self.inference_app = inference_app
        self.fail_fast = fail_fast
        self.first_delay, self.max_delay = first_delay, max_delay
        self.attempts = 0
        self.error: str | None = None
        self.next_try: float | None = None
        self._ready: WSGIApp | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def ready(self) -> bool:
        return self._ready is not None

    def start(self) -> WSGIApp:
        """Initialise now; on failure raise (fail fast) or serve not-ready and keep retrying."""
        if self._attempt():
            assert self._ready is not None
            return self._ready  # the common case: Flask is served directly, nothing in between
        self._thread = threading.Thread(target=self._retry, name="hml-inference-init", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.inference_app.started_reloader is not None:
            self.inference_app.started_reloader.stop()

    def _attempt(self) -> bool:
        self.attempts += 1
        try:
            flask_app = self.inference_app.build()
        except Exception as exc:
            if self.fail_fast:
                raise
            self.error = str(exc) or type(exc).__name__
            delay = self._delay()
            self.next_try = time.monotonic() + delay
            log.error(
                "inference app '%s' is not ready: initialisation attempt %d failed: %s; "
                "serving /livez and a 503 /readyz, retrying in %.0fs "
                "(pass --fail-fast to exit instead)",
                self.inference_app.app.name,
                self.attempts,
                self.error,
                delay,
            )
            return False
        if self.attempts > 1:
            log.info(
                "inference app '%s' initialised on attempt %d; now ready",
                self.inference_app.app.name,
                self.attempts,
            )
        self.error, self.next_try = None, None
        self._ready = flask_app
        reloader = self.inference_app.started_reloader
        if reloader is not None:  # models loaded by 'latest' or an alias follow it from now on
            reloader.start(self.inference_app.model_poll_seconds)
        return True

    def _delay(self) -> float:
        return float(min(self.max_delay, self.first_delay * 2 ** (self.attempts - 1)))

    def _retry(self) -> None:
        while not self._stop.is_set():
            wait = max(0.0, (self.next_try or 0.0) - time.monotonic())
            if self._stop.wait(wait) or self._attempt():
                return

    def reasons(self) -> list[str]:
        retry = (
            f", next try in {max(0.0, self.next_try - time.monotonic()):.0f}s"
            if self.next_try is not None
            else ""
        )
        return [f"initialisation failed (attempt {self.attempts}{retry}): {self.error}"]

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        ready = self._ready
        if ready is not None:
            return ready(environ, start_response)
        path = environ.get("PATH_INFO", "")
        if path == "/livez":
            status, body = "200 OK", {"status": "ok", "ready": False}
        elif path == "/readyz":
            status, body = (
                "503 Service Unavailable",
                {
                    "status": "not ready",
                    "reasons": self.reasons(),
                },
            )
        else:
            status, body = (
                "503 Service Unavailable",
                {
                    "error": "not ready",
                    "reasons": self.reasons(),
                },
            )
        data = orjson.dumps(body)
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
        if not status.startswith("200"):
            headers.append(("Retry-After", str(max(1, round(self._delay())))))
        start_response(status, headers)
        return [data]
