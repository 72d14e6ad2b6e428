"""Drift on live traffic: the inputs a model is served, compared with what it was trained on.

A published model records its training distributions (``ModelContainer.distributions``): per
numeric feature ``count, mean, std, min, p25, p50, p75, max``, per categorical feature its
values. While serving, each request's input is matched against the features of the models its
route uses: the fields of a typed route's input record named like a feature, or the keys of a
JSON object (or of each object of a list) for a route without an input schema; a record with
no feature names but one vector of as many numbers as the model's numeric features (or that
vector itself) is read by position, in the order of the container's ``features_numeric``. Per feature the
server keeps running counts only, so a request costs O(features) and allocates nothing per
feature:

- numeric: samples, their sum, how many fell outside the training ``[min, max]``;
- categorical: samples, how many were values never seen in training.

The drift score of a numeric feature is ``|live mean - training mean| / training std``: how far
the live mean has moved, in training standard deviations (no score when the training std is 0
or unknown). Once a feature has ``min_samples`` samples, a score at or above ``threshold`` flags
drift, and so does a categorical feature whose share of values never seen in training is at or
above ``unseen_threshold``: shown on ``/`` and ``/metrics`` and logged once as a warning when
it crosses (and once as info when it falls back). The statistics start over when a model switches version (see
``reload``): a new version has its own training distributions.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator, Mapping
from typing import Any

log = logging.getLogger("hypermodel.serving")

DEFAULT_THRESHOLD = 3.0
DEFAULT_MIN_SAMPLES = 100
DEFAULT_UNSEEN_THRESHOLD = 0.05  # share of a categorical feature's live values unseen in training
# A route's payload may be a list of records: look at this many of them at most per request.
MAX_RECORDS = 64


class ModelDrift:
    """Running statistics of one model version's live inputs against its training data."""

    def __init__(self, name: str, reference: Any, distributions: Any, order: Any = None) -> None:
        self.name = name
        self.reference = reference  # the version these statistics belong to
        self.version = str(getattr(reference, "version", "?"))
        numeric = _section(distributions, "numeric")
        categorical = _section(distributions, "categorical")
        self.numeric: tuple[str, ...] = tuple(
            str(k) for k, v in numeric.items() if isinstance(v, dict)
        )
        self.categorical: tuple[str, ...] = tuple(
            str(k) for k, v in categorical.items() if isinstance(v, list)
        )
        self.means = [_number(numeric[f].get("mean")) for f in self.numeric]
        self.stds = [_number(numeric[f].get("std")) for f in self.numeric]
        self.lows = [_bound(numeric[f].get("min"), -math.inf) for f in self.numeric]
        self.highs = [_bound(numeric[f].get("max"), math.inf) for f in self.numeric]
        self.seen = [_values(categorical[f]) for f in self.categorical]
        # a vector of inputs without names (``features: list[float]``) is read by position, in
        # the order of the container's ``features_numeric`` (as given to analyze_distributions)
        # when it names the same features, else in the recorded distributions' order
        named = [str(f) for f in order or ()]
        self.by_position: tuple[int, ...] = (
            tuple(self.numeric.index(f) for f in named)
            if sorted(named) == sorted(self.numeric)
            else tuple(range(len(self.numeric)))
        )
        n, c = len(self.numeric), len(self.categorical)
        self.counts = [0] * n
        self.sums = [0.0] * n
        self.outside = [0] * n
        self.flagged = [False] * n
        self.cat_counts = [0] * c
        self.unseen = [0] * c
        self.cat_flagged = [False] * c
        self._lock = threading.Lock()

    @property
    def empty(self) -> bool:
        return not (self.numeric or self.categorical)

    def observe(
        self,
        record: Any,
        threshold: float,
        min_samples: int,
        unseen_threshold: float = DEFAULT_UNSEEN_THRESHOLD,
    ) -> None:
        """Count one input record: a schema instance or a dict with the features as fields, or
        one holding a single vector of the numeric features without names, or that vector."""
        values = self._named(record)
        if values is None:
            values = self._positional(record)
            if values is None:
                return
        numbers, categories = values
        crossed: list[tuple[int, bool, float]] | None = None
        crossed_cat: list[tuple[int, bool, float]] | None = None
        with self._lock:
            for i, value in enumerate(numbers):
                if value.__class__ is bool or not isinstance(value, (int, float)):
                    continue
                if value != value or value in (math.inf, -math.inf):
                    continue  # NaN and infinities have no mean; the schema refuses them anyway
                self.counts[i] += 1
                self.sums[i] += value
                if value < self.lows[i] or value > self.highs[i]:
                    self.outside[i] += 1
                if self.counts[i] >= min_samples:
                    score = self._score(i)
                    drifted = score is not None and score >= threshold
                    if drifted is not self.flagged[i]:
                        self.flagged[i] = drifted
                        crossed = crossed or []
                        crossed.append((i, drifted, score or 0.0))
            for j, value in enumerate(categories):
                if value is None or isinstance(value, (list, dict)):
                    continue
                self.cat_counts[j] += 1
                if value not in self.seen[j] and str(value) not in self.seen[j]:
                    self.unseen[j] += 1
                if self.cat_counts[j] >= min_samples:
                    share = self.unseen[j] / self.cat_counts[j]
                    drifted = share >= unseen_threshold
                    if drifted is not self.cat_flagged[j]:
                        self.cat_flagged[j] = drifted
                        crossed_cat = crossed_cat or []
                        crossed_cat.append((j, drifted, share))
        for i, drifted, score in crossed or ():
            self._log_crossing(i, drifted, score, threshold)
        for j, drifted, share in crossed_cat or ():
            self._log_unseen(j, drifted, share, unseen_threshold)

    def _named(self, record: Any) -> tuple[list[Any], list[Any]] | None:
        """The record's value of each feature by name, or None when it names none of them."""
        if isinstance(record, (list, tuple)):
            return None
        if isinstance(record, Mapping):
            get = record.get
            numbers = [get(f) for f in self.numeric]
            categories = [get(f) for f in self.categorical]
        else:
            numbers = [getattr(record, f, None) for f in self.numeric]
            categories = [getattr(record, f, None) for f in self.categorical]
        if all(v is None for v in numbers) and all(v is None for v in categories):
            return None
        return numbers, categories

    def _positional(self, record: Any) -> tuple[list[Any], list[Any]] | None:
        """The numeric features read by position from the record's one vector of exactly as
        many values (or the record itself, when it is that vector); None when there is no such
        vector or more than one."""
        n = len(self.numeric)
        if not n:
            return None
        if isinstance(record, (list, tuple)):
            candidates: list[Any] = [record]
        else:
            fields = record if isinstance(record, Mapping) else getattr(record, "__dict__", {})
            candidates = [v for v in fields.values() if isinstance(v, (list, tuple))]
        vectors = [v for v in candidates if len(v) == n]
        if len(vectors) != 1:
            return None
        numbers: list[Any] = [None] * n
        for i, value in zip(self.by_position, vectors[0], strict=True):
            numbers[i] = value
        return numbers, [None] * len(self.categorical)

    def _score(self, i: int) -> float | None:
        std, mean, count = self.stds[i], self.means[i], self.counts[i]
        if not count or std is None or not std > 0 or mean is None:
            return None
        return abs(self.sums[i] / count - mean) / std

    def _log_crossing(self, i: int, drifted: bool, score: float, threshold: float) -> None:
        feature, count = self.numeric[i], self.counts[i]
        live = self.sums[i] / count if count else float("nan")
        if drifted:
            log.warning(
                "drift: model '%s' version %s feature '%s': the live mean %.4g is %.2f training "
                "standard deviations from the training mean %.4g (%d samples, threshold %g); "
                "check the inputs or retrain",
                self.name,
                self.version,
                feature,
                live,
                score,
                self.means[i],
                count,
                threshold,
            )
        else:
            log.info(
                "drift: model '%s' version %s feature '%s' is back within %g training standard "
                "deviations (live mean %.4g, %d samples)",
                self.name,
                self.version,
                feature,
                threshold,
                live,
                count,
            )

    def _log_unseen(self, j: int, drifted: bool, share: float, threshold: float) -> None:
        feature, count = self.categorical[j], self.cat_counts[j]
        if drifted:
            log.warning(
                "drift: model '%s' version %s feature '%s': %.1f%% of its live values were never "
                "seen in training (%d samples, threshold %.1f%%); check the inputs or retrain",
                self.name,
                self.version,
                feature,
                100 * share,
                count,
                100 * threshold,
            )
        else:
            log.info(
                "drift: model '%s' version %s feature '%s' is back under %.1f%% of values unseen "
                "in training (%.1f%%, %d samples)",
                self.name,
                self.version,
                feature,
                100 * threshold,
                100 * share,
                count,
            )

    def report(
        self,
        threshold: float,
        min_samples: int,
        unseen_threshold: float = DEFAULT_UNSEEN_THRESHOLD,
    ) -> dict[str, Any]:
        """The statistics as shown on ``/``: per feature, and whether drift is flagged."""
        with self._lock:
            numeric = {}
            drifted = []
            for i, feature in enumerate(self.numeric):
                count = self.counts[i]
                score = self._score(i)
                numeric[feature] = {
                    "samples": count,
                    "live_mean": self.sums[i] / count if count else None,
                    "training_mean": self.means[i],
                    "score": score,
                    "out_of_range": self.outside[i] / count if count else 0.0,
                }
                if count >= min_samples and score is not None and score >= threshold:
                    drifted.append(feature)
            categorical = {}
            for j, feature in enumerate(self.categorical):
                count = self.cat_counts[j]
                share = self.unseen[j] / count if count else 0.0
                categorical[feature] = {"samples": count, "unseen": share}
                if count >= min_samples and share >= unseen_threshold:
                    drifted.append(feature)
        return {
            "version": self.version,
            "detected": bool(drifted),
            "drifted_features": drifted,
            "numeric": numeric,
            "categorical": categorical,
        }


class DriftMonitor:
    """The live-input statistics of every model of one inference app."""

    def __init__(
        self,
        threshold: float = DEFAULT_THRESHOLD,
        min_samples: int = DEFAULT_MIN_SAMPLES,
        unseen_threshold: float = DEFAULT_UNSEEN_THRESHOLD,
    ) -> None:
        self.threshold = float(threshold)
        self.min_samples = int(min_samples)
        self.unseen_threshold = float(unseen_threshold)
        self.models: dict[str, ModelDrift] = {}
        # The version each model served before its last switch: a request that started before
        # the switch still counts there, without resetting the new version's statistics.
        self.retired: dict[str, ModelDrift] = {}
        self._lock = threading.Lock()

    def for_model(self, name: str, container: Any) -> ModelDrift | None:
        """The statistics of the version ``container`` serves (new ones after a switch)."""
        reference = getattr(container, "reference", None)
        found = self.models.get(name)
        if found is not None and found.reference is reference:
            return None if found.empty else found
        with self._lock:
            found = self.models.get(name)
            if found is None or found.reference is not reference:
                old = self.retired.get(name)
                if old is not None and old.reference is reference:
                    return None if old.empty else old  # a request pinned before the switch
                if found is not None:
                    self.retired[name] = found
                found = ModelDrift(
                    name,
                    reference,
                    getattr(container, "distributions", None),
                    getattr(container, "features_numeric", None),
                )
                self.models[name] = found
        return None if found.empty else found

    def observe(self, models: Mapping[str, Any], names: tuple[str, ...], payload: Any) -> None:
        """Count ``payload`` (a record, a dict or a list of them) for each model in ``names``."""
        if not names:
            if len(models) != 1:
                return
            names = tuple(models)
        for name in names:
            container = models.get(name)
            if container is None:
                continue
            drift = self.for_model(name, container)
            if drift is None:
                continue
            if isinstance(payload, list) and not _is_vector(payload):
                for record in payload[:MAX_RECORDS]:  # records, or rows of values by position
                    if record is not None and not isinstance(record, (str, int, float)):
                        drift.observe(record, *self._limits)
            elif payload is not None and not isinstance(payload, (str, int, float)):
                drift.observe(payload, *self._limits)

    @property
    def _limits(self) -> tuple[float, int, float]:
        return self.threshold, self.min_samples, self.unseen_threshold

    def report(self) -> dict[str, Any]:
        return {
            name: drift.report(*self._limits)
            for name, drift in list(self.models.items())
            if not drift.empty
        }

    def collect(self) -> Iterator[Any]:
        """Prometheus families (a custom collector of the server's registry)."""
        from prometheus_client.core import GaugeMetricFamily

        score = GaugeMetricFamily(
            "hml_drift_score",
            "|live mean - training mean| / training std of a numeric feature",
            labels=["model", "version", "feature"],
        )
        outside = GaugeMetricFamily(
            "hml_drift_out_of_range_ratio",
            "Share of live values of a numeric feature outside the training [min, max]",
            labels=["model", "version", "feature"],
        )
        unseen = GaugeMetricFamily(
            "hml_drift_unseen_ratio",
            "Share of live values of a categorical feature never seen in training",
            labels=["model", "version", "feature"],
        )
        samples = GaugeMetricFamily(
            "hml_drift_samples",
            "Live values counted per feature since the version was loaded",
            labels=["model", "version", "feature"],
        )
        detected = GaugeMetricFamily(
            "hml_drift_detected",
            "1 when a feature's drift score, or share of unseen categories, is at or above its "
            "threshold",
            labels=["model", "version"],
        )
        for name, report in self.report().items():
            version = report["version"]
            for feature, stats in report["numeric"].items():
                labels = [name, version, feature]
                samples.add_metric(labels, stats["samples"])
                outside.add_metric(labels, stats["out_of_range"])
                if stats["score"] is not None:
                    score.add_metric(labels, stats["score"])
            for feature, stats in report["categorical"].items():
                labels = [name, version, feature]
                samples.add_metric(labels, stats["samples"])
                unseen.add_metric(labels, stats["unseen"])
            detected.add_metric([name, version], 1.0 if report["detected"] else 0.0)
        yield from (score, outside, unseen, samples, detected)


def _section(distributions: Any, name: str) -> dict[str, Any]:
    section = distributions.get(name) if isinstance(distributions, dict) else None
    return section if isinstance(section, dict) else {}


def _number(value: Any) -> float | None:
    if value.__class__ is bool or not isinstance(value, (int, float)) or value != value:
        return None
    return float(value)


def _bound(value: Any, default: float) -> float:
    number = _number(value)
    return default if number is None else number


def _values(values: list[Any]) -> frozenset[Any]:
    hashable = {v for v in values if isinstance(v, (str, int, float, bool))}
    return frozenset(hashable | {str(v) for v in hashable})


def _is_vector(payload: list[Any]) -> bool:
    """A list of plain numbers: one input by position, not a list of records."""
    return bool(payload) and all(
        v.__class__ is not bool and isinstance(v, (int, float)) for v in payload
    )
