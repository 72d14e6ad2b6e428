"""The demo's data models: what is stored in datasets and what the server accepts and returns."""

from __future__ import annotations

from hypermodel import hml

FEATURES = [
    "alcohol", "malic_acid", "ash", "alcalinity_of_ash", "magnesium", "total_phenols",
    "flavanoids", "nonflavanoid_phenols", "proanthocyanins", "color_intensity", "hue",
    "od280_od315", "proline",
]  # fmt: skip


class Wine(hml.BaseData, id="wineId"):
    """One wine of scikit-learn's bundled wine data: 13 measurements and its cultivar (0, 1, 2)."""

    wineId: int
    features: list[float]
    cultivar: int


class WineFeatures(hml.BaseData):
    """A prediction request: the 13 measurements, in the order of FEATURES."""

    features: list[float]


class Prediction(hml.BaseData):
    cultivar: int
    probabilities: list[float]
