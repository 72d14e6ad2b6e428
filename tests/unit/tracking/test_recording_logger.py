"""What ``Run.start_recording_logs`` returns: the captured logger, usable as a logging.Logger,
that also stops its own recording; and '\\r' continuing a recorded line."""

from __future__ import annotations

import logging

import pytest

from hypermodel.storage.local import LocalStorage
from hypermodel.tracking.run import RecordingLogger, Run
from hypermodel.tracking.store import RunStore
from tests.unit.tracking.conftest import FlakyStorage


def test_the_returned_logger_stops_its_own_recording(storage: LocalStorage) -> None:
    run = Run("stop-via-logger", storage=storage)
    logger = run.start_recording_logs("rec-test")
    assert isinstance(logger, RecordingLogger)
    logger.info("kept")
    logger.stop_recording_logs()
    assert logging.getLogger("rec-test").handlers == []  # the run's handler is gone
    assert logging.getLogger("rec-test").level == logging.NOTSET  # and the level restored
    logger.warning("dropped")
    logger.stop_recording_logs()  # a second stop does nothing
    run.close()
    text = RunStore(storage).logs("stop-via-logger")
    assert "INFO rec-test: kept\n" in text and "dropped" not in text


def test_the_returned_logger_is_the_logger(
    storage: LocalStorage, caplog: pytest.LogCaptureFixture
) -> None:
    run = Run("logger-like", storage=storage)
    logger = run.start_recording_logs("rec-like")
    real = logging.getLogger("rec-like")
    # Logger attributes and methods reach the real logger
    assert logger.logger is real and logger.name == "rec-like"
    assert logger.handlers is real.handlers and len(real.handlers) == 1
    assert logger.propagate is True and logger.getChild("x") is logging.getLogger("rec-like.x")
    logger.setLevel(logging.WARNING)
    assert real.level == logging.WARNING and not logger.isEnabledFor(logging.INFO)
    logger.setLevel(logging.DEBUG)
    with caplog.at_level(logging.DEBUG, logger="rec-like"):
        logger.debug("with %s", "args", extra={"user_field": 7})
    (record,) = [r for r in caplog.records if r.name == "rec-like"]
    assert record.getMessage() == "with args" and record.user_field == 7  # type: ignore[attr-defined]
    assert record.funcName == "test_the_returned_logger_is_the_logger"  # the caller, not ours
    logger.stop_recording_logs()
    run.close()
    assert "DEBUG rec-like: with args\n" in RunStore(storage).logs("logger-like")


def test_carriage_return_cancels_the_line_break(storage: LocalStorage) -> None:
    run = Run("progress", storage=storage)
    logger = run.start_recording_logs("rec-progress")
    logger.info("before")
    logger.info("Progress \r")
    for _ in range(10):
        logger.info("-\r")
    logger.info(" done")
    logger.info("after")
    run.close()  # stops the recording too
    lines = RunStore(storage).logs("progress").splitlines()
    assert len(lines) == 3
    assert lines[0].endswith(" INFO rec-progress: before")
    assert lines[1].endswith(" INFO rec-progress: Progress ---------- done")
    assert lines[1].count("rec-progress") == 1  # one prefix for the whole line
    assert lines[2].endswith(" INFO rec-progress: after")


def test_a_dry_run_still_returns_a_stoppable_logger(flaky: FlakyStorage) -> None:
    flaky.failing = True
    run = Run("dry-logs", storage=flaky)
    assert run.dry
    logger = run.start_recording_logs("rec-dry")
    assert isinstance(logger, RecordingLogger)
    logger.info("not recorded")
    logger.stop_recording_logs()
    assert logging.getLogger("rec-dry").handlers == []
    run.close()
