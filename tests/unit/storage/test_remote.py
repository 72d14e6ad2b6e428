"""Bucket backends without a server: URLs, endpoints from options and environment, errors."""

from __future__ import annotations

import pytest

from hypermodel.errors import UnsafeNameError, UsageError
from hypermodel.storage import open_storage
from hypermodel.storage.remote import GCSStorage, S3Storage, _is_precondition_failure


def test_s3_url_and_endpoint_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HML_S3_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    storage = open_storage("s3://bucket/some/prefix/")
    assert isinstance(storage, S3Storage)
    assert storage.url == "s3://bucket/some/prefix"
    assert storage._path("a/b") == "bucket/some/prefix/a/b"
    assert (
        storage.fs.client_kwargs.get("endpoint_url") == "http://127.0.0.1:9"
        or storage.fs.endpoint_url == "http://127.0.0.1:9"
    )


def test_explicit_endpoint_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    storage = S3Storage("s3://b", endpoint_url="http://127.0.0.1:10", key="x", secret="x")
    assert storage.url == "s3://b" and storage._path("k") == "b/k"
    assert "10" in str(getattr(storage.fs, "endpoint_url", "")) + str(storage.fs.client_kwargs)


def test_gcs_emulator_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "127.0.0.1:9")
    storage = open_storage("gcs://bucket/p")
    assert isinstance(storage, GCSStorage)
    assert storage.url == "gs://bucket/p"
    assert storage.fs._endpoint == "http://127.0.0.1:9"


@pytest.mark.parametrize("url", ["s3://", "s3:///prefix", "gs://"])
def test_a_url_without_bucket_is_refused(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "127.0.0.1:9")
    with pytest.raises(UsageError, match="names no bucket"):
        open_storage(url)


def test_unsafe_prefix_and_keys_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "127.0.0.1:9")
    with pytest.raises(UnsafeNameError):
        open_storage("gs://bucket/a/../b")
    with pytest.raises(UnsafeNameError):
        open_storage("gs://bucket/p")._path("../escape")


def test_precondition_failures_are_recognised() -> None:
    assert _is_precondition_failure(OSError("412 Precondition Failed"))
    assert not _is_precondition_failure(OSError("500 internal"))
