"""Aliases: an append-only log per alias, compare-and-set, rollback, races, and every place a
model is loaded by name resolving them."""

from __future__ import annotations

import itertools
import json
import threading
from typing import Any

import pytest

from hypermodel import hml
from hypermodel.errors import NotFoundError, UsageError
from hypermodel.models import AliasConflictError, ModelStore
from hypermodel.models.aliases import is_alias_name
from hypermodel.serving.errors import ModelIntegrityError
from hypermodel.serving.model import ModelContainer
from hypermodel.storage import Storage

from .conftest import publish
from .racing import check_one_winner, race


@pytest.mark.parametrize("name", ["production", "staging", "canary-eu", "a", "shadow_2"])
def test_alias_names(name: str) -> None:
    assert is_alias_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "latest",
        "aliases",
        "v3",
        "v1.2",
        "7",
        "20261122-040047-9091f5",
        "Production",
        "-x",
        "a/b",
        "prod\n",
        "a" * 64,
        "",
        "x..y",
    ],
)
def test_names_confusable_with_versions_are_not_aliases(published: Storage, name: str) -> None:
    assert not is_alias_name(name)
    with pytest.raises(UsageError, match=r"alias name .* is not allowed"):
        ModelStore(published).set_alias("clf", name, "v1")


def test_promote_resolve_history_and_the_log_in_the_bucket(published: Storage) -> None:
    store = ModelStore(published)
    first = store.set_alias("clf", "production", "v1", reason="first")
    second = store.set_alias("clf", "production", "v2", expected="v1", reason="better")
    store.set_alias("clf", "staging", "v3")
    assert store.aliases("clf") == {"production": "v2", "staging": "v3"}
    assert store.resolve("clf", "production").version == "v2"
    assert store.resolve("clf", "staging").version == "v3"
    assert [
        (e.sequence, e.version, e.previous, e.reason)
        for e in store.alias_history("clf", "production")
    ] == [(1, "v1", None, "first"), (2, "v2", "v1", "better")]
    assert first.key == "models/clf/aliases/production/0000000001.json"
    stored = json.loads(published.read_bytes(second.key))
    assert stored == {
        "model": "clf",
        "alias": "production",
        "sequence": 2,
        "version": "v2",
        "previous": "v1",
        "at": second.at,
        "by": second.by,
        "reason": "better",
    }
    assert "@" in second.by  # user@host, nothing else


def test_by_names_the_author_when_set(published: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HML_AUTHOR", "release-bot")
    assert ModelStore(published).set_alias("clf", "production", "v1").by == "release-bot"


def test_expected_is_a_compare_and_set(published: Storage) -> None:
    store = ModelStore(published)
    store.set_alias("clf", "production", "v1")
    with pytest.raises(AliasConflictError) as info:
        store.set_alias("clf", "production", "v3", expected="v2")
    text = str(info.value)
    assert "alias 'production' of model 'clf' is at v1, not v2" in text and "--expect v1" in text
    assert store.aliases("clf") == {"production": "v1"}
    assert len(store.alias_history("clf", "production")) == 1
    with pytest.raises(AliasConflictError, match="is at nothing"):
        store.set_alias("clf", "staging", "v3", expected="v2")


def test_rollback_moves_back_and_is_an_entry(published: Storage) -> None:
    store = ModelStore(published)
    with pytest.raises(NotFoundError, match="no alias 'production'"):
        store.rollback("clf", "production")
    store.set_alias("clf", "production", "v1")
    with pytest.raises(UsageError, match="no previous version to roll back to"):
        store.rollback("clf", "production")
    store.set_alias("clf", "production", "v3")
    back = store.rollback("clf", "production")
    assert (back.sequence, back.version, back.previous) == (3, "v1", "v3")
    assert "rollback of entry 2" in back.reason
    assert store.resolve("clf", "production").version == "v1"
    assert store.rollback("clf", "production").version == "v3"  # undoes the rollback


def test_a_promotion_landing_during_a_rollback_is_a_conflict_not_undone(
    published: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ModelStore(published)
    store.set_alias("clf", "production", "v1")
    store.set_alias("clf", "production", "v2")
    resolve = store.resolve

    def hotfix_meanwhile(name: str, ref: str = "latest") -> Any:
        # someone promotes v3 after the rollback read entry 2 and before it writes
        monkeypatch.setattr(store, "resolve", resolve)
        ModelStore(published).set_alias("clf", "production", "v3", reason="hotfix")
        return resolve(name, ref)

    monkeypatch.setattr(store, "resolve", hotfix_meanwhile)
    with pytest.raises(AliasConflictError, match="entry 3 is newer than entry 2"):
        store.rollback("clf", "production")
    assert store.resolve("clf", "production").version == "v3"  # the hotfix stands
    assert [e.version for e in store.alias_history("clf", "production")][-1] == "v3"


def test_delete_is_an_entry_and_rollback_restores(published: Storage) -> None:
    store = ModelStore(published)
    store.set_alias("clf", "production", "v2")
    gone = store.delete_alias("clf", "production")
    assert (gone.version, gone.previous) == (None, "v2")
    assert json.loads(published.read_bytes(gone.key))["version"] is None
    assert store.aliases("clf") == {}
    with pytest.raises(NotFoundError, match="alias 'production' of model 'clf' was deleted"):
        store.resolve("clf", "production")
    with pytest.raises(NotFoundError, match="no alias 'production' set"):
        store.delete_alias("clf", "production")
    assert store.rollback("clf", "production").version == "v2"
    assert store.resolve("clf", "production").version == "v2"


def test_unknown_names_list_what_exists(published: Storage) -> None:
    store = ModelStore(published)
    store.set_alias("clf", "production", "v1")
    with pytest.raises(NotFoundError) as info:
        store.resolve("clf", "staging")
    assert "no version or alias 'staging'" in str(info.value)
    assert "v1, v2, v3" in str(info.value) and "production -> v1" in str(info.value)
    with pytest.raises(NotFoundError, match=r"has no version 'v9'.*v1, v2, v3"):
        store.set_alias("clf", "staging", "v9")
    with pytest.raises(NotFoundError, match=r"has no version 'production'"):
        store.set_alias("clf", "staging", "production")  # an alias of an alias
    for call in (
        lambda: store.resolve("other"),
        lambda: store.versions("other"),
        lambda: store.set_alias("other", "production", "v1"),
        lambda: store.alias_history("other", "production"),
    ):
        with pytest.raises(NotFoundError, match=r"model 'other' has never been published.*clf"):
            call()


def test_a_name_never_means_both_a_version_and_an_alias(storage: Storage, fitted: Any) -> None:
    publish(storage, fitted, "v1")
    publish(storage, fitted, "canary")  # a version named like an alias
    store = ModelStore(storage)
    with pytest.raises(UsageError, match="has a version named 'canary'"):
        store.set_alias("clf", "canary", "v1")
    store.set_alias("clf", "production", "v1")
    with pytest.raises(UsageError, match="has an alias named 'production'"):
        publish(storage, fitted, "production")
    assert store.resolve("clf", "canary").version == "canary"


def test_racing_promoters_one_wins_the_other_is_told(published: Storage) -> None:
    ModelStore(published).set_alias("clf", "production", "v1")
    results = race(published, "clf", "production", ["v2", "v3"])
    check_one_winner(published, "clf", "production", results)
    assert len(ModelStore(published).alias_history("clf", "production")) == 2


def test_many_promoters_no_update_is_lost(published: Storage) -> None:
    """Free-running threads: each change is either recorded in the log or refused, never
    overwritten; the log has no gaps and every entry's previous is the entry before."""
    store = ModelStore(published)
    outcomes: list[Any] = []
    lock = threading.Lock()

    def promote(n: int) -> None:
        for i in range(4):
            version = ("v1", "v2", "v3")[(n + i) % 3]
            try:
                result: Any = store.set_alias("clf", "production", version, reason=f"{n}-{i}")
            except AliasConflictError as exc:
                result = exc
            with lock:
                outcomes.append(result)

    threads = [threading.Thread(target=promote, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    recorded = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(outcomes) == 24
    history = store.alias_history("clf", "production")
    assert [e.sequence for e in history] == list(range(1, len(history) + 1))
    assert sorted(e.reason for e in history) == sorted(o.reason for o in recorded)
    for before, after in itertools.pairwise(history):
        assert after.previous == before.version


def test_corrupt_or_moved_entries_are_refused_then_superseded(published: Storage) -> None:
    store = ModelStore(published)
    entry = store.set_alias("clf", "production", "v1")
    key = entry.key
    for content, message in (
        (b"{not json", "is not valid JSON"),
        (b"[]", "is not a JSON object"),
        (
            json.dumps({**json.loads(published.read_bytes(key)), "version": "../v1"}).encode(),
            "'version' '../v1' is not a version name",
        ),
        (
            json.dumps({**json.loads(published.read_bytes(key)), "alias": "staging"}).encode(),
            "not its own place",
        ),
    ):
        published.write_bytes(key, content)
        with pytest.raises(ModelIntegrityError, match=message) as info:
            store.resolve("clf", "production")
        assert key in str(info.value) and "set the alias again" in str(info.value)
    with pytest.raises(ModelIntegrityError):  # cannot compare with what cannot be read
        store.set_alias("clf", "production", "v2", expected="v1")
    assert store.set_alias("clf", "production", "v2").sequence == 2
    assert store.resolve("clf", "production").version == "v2"


def test_an_alias_pointing_at_a_removed_version_says_so(published: Storage) -> None:
    store = ModelStore(published)
    store.set_alias("clf", "production", "v1")
    published.delete_prefix("models/clf/v1")
    with pytest.raises(NotFoundError, match="no version or alias 'v1'"):
        store.resolve("clf", "production")


def test_container_and_inference_app_load_by_alias(published: Storage, fitted: Any) -> None:
    store = ModelStore(published)
    store.set_alias("clf", "production", "v2")
    assert ModelContainer("clf").load("production", published).reference.version == "v2"
    assert store.verify("clf", "production").version == "v2"

    app = hml.HmlApp("svc", root=published.url.removeprefix("file://"))

    @hml.inference(app.inference)
    def init(inference_app: hml.HmlInferenceApp) -> None:
        inference_app.load_model(ModelContainer("clf"), "production")

        @inference_app.route("/predict")
        def predict(payload: Any) -> Any:
            return {"cultivar": int(inference_app.get_model("clf").predict([payload])[0])}

    client = app.inference.build().test_client()
    response = client.post(
        "/predict",
        json=[13.2, 1.78, 2.14, 11.2, 100, 2.65, 2.76, 0.26, 1.28, 4.38, 1.05, 3.4, 1050],
    )
    assert response.status_code == 200
    assert response.headers["x-model-version"] == "v2"


def test_versions_are_references_oldest_first(published: Storage) -> None:
    refs = ModelStore(published).versions("clf")
    assert [r.version for r in refs] == ["v1", "v2", "v3"]
    assert refs[0].metrics == {"accuracy": 0.6}
    assert ModelStore(published).models() == ["clf"]
