"""Errors of datasets and data models. Each names the dataset or file and says what to do."""

from __future__ import annotations

from ..errors import DeclarationError, HypermodelError, NotFoundError, UsageError


class DatasetError(HypermodelError):
    """A dataset could not be written or read as asked."""


class DatasetCorruptError(DatasetError):
    """A published dataset's files do not match its ``.chk``: missing, truncated or altered."""


class DatasetNotFoundError(DatasetError, NotFoundError):
    """No dataset (or no such chunk) exists where one was asked for."""


class DatasetNotClosedError(DatasetError):
    """The dataset has files but no ``.chk``: its writer never closed (crashed, killed or raised)."""


class DatasetExistsError(DatasetError):
    """A published dataset of that name already exists; datasets are immutable once published."""


class DatasetBusyError(DatasetExistsError):
    """Another writer holds the dataset's publish claim and is publishing it right now."""


class DatasetUsageError(DatasetError, UsageError):
    """A wrong argument: wrong type appended, bad chunk count, unsafe name, closed writer..."""


class DirtyRepoError(DatasetError, UsageError):
    """A pipeline op tried to write a dataset from a repository with uncommitted changes."""


class DataModelError(DatasetError, DeclarationError):
    """A BaseData class was declared wrongly (float id, unknown id field, bad field type)."""


class NoIdError(DatasetError):
    """The object's class declares no id, so it cannot be stored at the top level of a dataset."""
