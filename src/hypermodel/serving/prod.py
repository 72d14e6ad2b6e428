"""waitress for ``inference run-prod``: connection limits that slow clients cannot exhaust, and
JSON answers for the requests waitress refuses before the app sees them.

waitress reads every request whole before a worker thread sees it, so an idle or slow client
costs a socket, not a thread; what it can exhaust is ``connection_limit`` (waitress's default,
100, let 100 idle sockets shut every other client out until ``channel_timeout``, 120 s, closed
them). The defaults here allow 1000 connections, close a connection idle for 75 s (longer than
the 60 s idle timeout of nginx ingress and AWS load balancers, which reuse connections to the
pod) and look for idle ones every 10 s; ``poll()`` replaces ``select()``, which fails beyond
1024 sockets. A cluster puts a proxy in front that buffers requests and times slow clients out
(an ingress controller does): see docs/serving.md.

waitress answers a malformed request line or header (400), a header beyond its limit (431), a
body beyond its limit (413) and a failure outside the app (500) itself, in plain text; here they
are the server's documented JSON error instead.

Imports nothing heavy: the CLI reads the defaults when it builds ``run-prod``'s options.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import HmlInferenceApp

log = logging.getLogger("hypermodel.serving")

DEFAULT_CONNECTION_LIMIT = 1000  # open connections; more wait in the listen backlog
DEFAULT_CHANNEL_TIMEOUT = 75  # seconds a connection may sit idle
CLEANUP_INTERVAL = 10  # seconds between looks for idle connections
MAX_HEADER_BYTES = 64 * 1024  # request line and headers (waitress: 256 KiB)
BODY_SLACK = 1024 * 1024  # waitress's body limit sits this far above the app's (see below)


def waitress_options(
    inference_app: HmlInferenceApp,
    threads: int,
    connection_limit: int = DEFAULT_CONNECTION_LIMIT,
    channel_timeout: int = DEFAULT_CHANNEL_TIMEOUT,
) -> dict[str, Any]:
    """waitress adjustments for run-prod."""
    return {
        "threads": threads,
        "ident": "hypermodel",
        "connection_limit": connection_limit,
        "channel_timeout": channel_timeout,
        "cleanup_interval": min(CLEANUP_INTERVAL, channel_timeout),
        "asyncore_use_poll": True,
        "max_request_header_size": MAX_HEADER_BYTES,
        # Above the app's limit so that the app answers 413 for a body it can still read (and
        # a chunked one, whose size is known only once read); a larger body is refused by
        # waitress on its Content-Length, before it is buffered whole.
        "max_request_body_size": inference_app.max_content_length + BODY_SLACK,
    }


def raise_open_files_limit(connection_limit: int) -> None:
    """Each connection is a file descriptor: raise the soft limit to fit (up to the hard one)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return
    want = connection_limit + 128  # the listening sockets, model files, logs
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= want:
        return
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):  # pragma: no cover - a sandbox refusing it
            target = soft
    if target < want:
        log.warning(
            "the open files limit (%d) is below --connection-limit %d: connections beyond it "
            "are refused; raise `ulimit -n` or lower the limit",
            target,
            connection_limit,
        )


def json_errors(server: Any, inference_app: HmlInferenceApp) -> None:
    """Make waitress's own error answers (400, 413, 431, 500) JSON on ``server``, the result of
    ``waitress.create_server`` (one listener, or several for a host with several addresses)."""
    import orjson
    from waitress.channel import HTTPChannel
    from waitress.task import ErrorTask

    limit_bytes = inference_app.max_content_length

    class JsonErrorTask(ErrorTask):  # type: ignore[misc]
        def execute(self) -> None:
            error = self.request.error
            body = orjson.dumps(error_body(error.code, error.reason, error.body, limit_bytes))
            self.status = f"{error.code} {error.reason}"
            self.response_headers.append(("Content-Type", "application/json"))
            self.set_close_on_finish()
            self.content_length = len(body)
            self.write(body)

    class JsonErrorChannel(HTTPChannel):  # type: ignore[misc]
        error_task_class = JsonErrorTask

    listeners = [server] if hasattr(server, "channel_class") else list(server.map.values())
    for listener in listeners:
        if hasattr(listener, "channel_class"):
            listener.channel_class = JsonErrorChannel


def error_body(code: int, reason: str, detail: str, limit_bytes: int) -> dict[str, Any]:
    """The JSON answer for an error waitress found: the same shape as the app's errors."""
    if code == 413:
        return {"error": "request body too large", "limit_bytes": limit_bytes}
    if code == 431:
        return {"error": "request header fields too large", "limit_bytes": MAX_HEADER_BYTES}
    if code >= 500:
        return {"error": "internal error"}
    return {"error": reason.lower(), "detail": str(detail)[:200]}
