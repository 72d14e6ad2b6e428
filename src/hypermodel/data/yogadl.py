"""YogaDL's ``Storage`` API on hypermodel datasets and streams.

A YogaDL app ports by changing its imports (``from hypermodel import yogadl``)::

    storage = yogadl.storage.LFSStorage(yogadl.storage.LFSConfigurations("/tmp/cache"))
    storage.submit(tf.data.Dataset.range(10), "range", "1.0")
    dataref = storage.fetch("range", "1.0")
    stream = dataref.stream(start_offset=5, shuffle=True, shuffle_seed=777)
    records = yogadl.tensorflow.make_tf_dataset(stream)

    @storage.cacheable("range", "2.0")
    def make_records():
        return tf.data.Dataset.range(10)

What is stored (no LMDB): a submitted dataset *is* a hypermodel dataset, at
``<storage root>/yogadl/<dataset_id>/<dataset_version>/`` (project ``yogadl``, branch
``dataset_id``, name ``dataset_version``; not versioned: the pair is the key), written
atomically by ``DatasetWriter``. Next to it, under ``yogadl/<dataset_id>/.claims-<version>/``:
``order.bin`` (the dataset position of each record in submission order, little-endian int64),
``meta.json`` (record kind, length, element spec) and, last, ``ready.json``: a pair exists once
``ready.json`` does. Submitting and ``cacheable`` share that layout and the build protocol of
``data/cacheable.py`` (one builder among many processes, claims on the bucket, no lock server).

Records:

- an iterable of ``BaseData`` objects is stored as they are; streams yield the objects.
- a ``tf.data.Dataset`` (TensorFlow installed) is stored as ``TensorRecord(index, value)``:
  ``index`` is the element's place in the submitted dataset (its id), ``value`` the flattened
  element (``tf.nest.flatten``), each leaf as a JSON list (bytes as base64 text). The element
  spec is kept in ``meta.json``; streams yield the element again as nested numpy values
  (``output_types``/``output_shapes`` describe it) and ``make_tf_dataset`` rebuilds tensors.

Streams (``DataRef.stream``) follow YogaDL: an unshuffled epoch yields records in submission
order; each ``iterator_fn()`` call is one epoch (``tf.data``'s ``repeat`` calls it again);
shard ``r`` of ``n`` owns the records ``r, r + n, ...`` of the submission order before any
shuffle; a shuffle is a full permutation of the shard. The order is computed by the same
functions as ``Dataset.stream`` (``stream_slices``) over submission indices instead of dataset
positions, so the indices a DataRef stream yields are exactly the positions an equal
``Dataset.stream`` yields, resume included. Differences from YogaDL, kept from hypermodel:
``start_offset`` counts records across epochs (``start_offset=25`` on 10 records starts in the
third epoch at its sixth record) and the epoch's permutation is seeded by a hash of
``(seed, epoch)``; a shuffle without ``shuffle_seed`` draws one, logs it and exposes it as
``stream.seed`` (YogaDL refuses). ``skip_shuffle_at_epoch_end=True`` shuffles once: every epoch
repeats the first epoch's permutation.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import secrets
import sys
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from ..errors import NotFoundError
from ..names import check_name
from ..storage import Storage as BucketStorage
from ..storage import open_storage, resolve_storage
from .cacheable import CacheBuild, load_type, type_path
from .dataset import Dataset, DatasetWriter
from .errors import DatasetExistsError, DatasetNotFoundError, DatasetUsageError
from .io.claims import Claims
from .io.stream import Stream as DatasetStream
from .io.stream import check_stream_options, epoch_order, open_index, shard_positions, stream_slices
from .model import BaseData

log = logging.getLogger(__name__)

PROJECT = "yogadl"
TENSOR = "tensor"
OBJECT = "object"


class TensorRecord(BaseData, id="index"):
    """One element of a submitted ``tf.data.Dataset``: its index and its flattened leaves."""

    index: int
    value: Any


# -- configurations (YogaDL's constructor shapes) ------------------------------------------------
class LFSConfigurations:
    """YogaDL's ``LFSConfigurations(storage_dir_path)``: a local directory."""

    def __init__(self, storage_dir_path: str) -> None:
        self.storage_dir_path = str(storage_dir_path)

    @property
    def url(self) -> str:
        return self.storage_dir_path


class _BucketConfigurations:
    scheme = ""

    def __init__(
        self,
        bucket: str,
        bucket_directory_path: str = "",
        url: str | None = None,
        local_cache_dir: str = "/tmp/",
        **options: Any,
    ) -> None:
        # url (YogaDL's coordinator websocket) and local_cache_dir are accepted and unused:
        # cacheable coordinates through the bucket and streams read ranges, no local copy
        self.bucket = bucket
        self.bucket_directory_path = bucket_directory_path.strip("/")
        self.coordinator_url = url
        self.local_cache_dir = local_cache_dir
        self.options = options

    @property
    def url(self) -> str:
        path = f"/{self.bucket_directory_path}" if self.bucket_directory_path else ""
        return f"{self.scheme}://{self.bucket}{path}"


class GCSConfigurations(_BucketConfigurations):
    """YogaDL's ``GCSConfigurations(bucket, bucket_directory_path, url, ...)`` -> ``gs://``."""

    scheme = "gs"


class S3Configurations(_BucketConfigurations):
    """YogaDL's ``S3Configurations(bucket, bucket_directory_path, url, access_key=,
    secret_key=, endpoint_url=, ...)`` -> ``s3://``."""

    scheme = "s3"

    def __init__(
        self,
        bucket: str,
        bucket_directory_path: str = "",
        url: str | None = None,
        local_cache_dir: str = "/tmp/",
        access_key: str | None = None,
        secret_key: str | None = None,
        endpoint_url: str | None = None,
        **options: Any,
    ) -> None:
        if access_key is not None:
            options["key"] = access_key
        if secret_key is not None:
            options["secret"] = secret_key
        if endpoint_url is not None:
            options["endpoint_url"] = endpoint_url
        super().__init__(bucket, bucket_directory_path, url, local_cache_dir, **options)


# -- streams ---------------------------------------------------------------------------------------
class Stream:
    """YogaDL's ``Stream``: ``iterator_fn()`` yields one epoch (each call the next one),
    ``length`` records per epoch, ``output_types``/``output_shapes`` of the elements."""

    def __init__(
        self,
        iterator_fn: Callable[[], Iterator[Any]],
        length: int,
        output_types: Any = None,
        output_shapes: Any = None,
    ) -> None:
        self.iterator_fn = iterator_fn
        self.length = length
        self.output_types = output_types
        self.output_shapes = output_shapes

    def __iter__(self) -> Iterator[Any]:
        return self.iterator_fn()

    def __len__(self) -> int:
        return self.length


class DataRefStream(Stream):
    """A stream of a ``DataRef``; also exposes ``seed`` (drawn when not given) and ``position``
    (records yielded so far counted from the first epoch: the ``start_offset`` to resume
    from)."""

    def __init__(
        self,
        ref: DataRef,
        start_offset: int,
        shuffle: bool,
        skip_shuffle_at_epoch_end: bool,
        shuffle_seed: int | None,
        shard_rank: int,
        num_shards: int,
        drop_shard_remainder: bool,
    ) -> None:
        check_stream_options(start_offset, shard_rank, num_shards, None, 1)
        if shuffle and shuffle_seed is None:
            shuffle_seed = secrets.randbits(32)
            log.warning(
                "stream of %s shuffles with seed %d (none was given); pass shuffle_seed=%d "
                "to replay this order",
                ref,
                shuffle_seed,
                shuffle_seed,
            )
        self.ref = ref
        self.start_offset = start_offset
        self.shuffle = shuffle
        self.skip_shuffle_at_epoch_end = skip_shuffle_at_epoch_end
        self.seed = shuffle_seed
        self.shard_rank, self.num_shards = shard_rank, num_shards
        self.drop_shard_remainder = drop_shard_remainder
        self.shard = shard_positions(ref.length, shard_rank, num_shards, drop_shard_remainder)
        self.position = start_offset
        self._epochs: Iterator[Sequence[int]] | None = None
        super().__init__(self._next_epoch, len(self.shard), *ref.output_spec())

    def epochs(self) -> Iterator[Sequence[int]]:
        """Submission indices in stream order, one sequence per epoch, from ``start_offset``."""
        if not (self.shuffle and self.skip_shuffle_at_epoch_end):
            return stream_slices(self.shard, self.shuffle, self.seed, self.start_offset, None)
        return self._same_permutation()

    def _same_permutation(self) -> Iterator[Sequence[int]]:
        per_epoch = len(self.shard)
        if per_epoch == 0:
            return
        order = epoch_order(self.shard, True, self.seed, 0)  # shuffled once, at the start
        skip = self.start_offset % per_epoch
        while True:
            yield order[skip:]
            skip = 0

    def _next_epoch(self) -> Iterator[Any]:
        if self._epochs is None:
            self._epochs = self.epochs()
        indices = next(self._epochs, None)
        if indices is None:  # an empty shard: every epoch is empty
            return iter(())
        return self._read(indices)

    def _read(self, indices: Sequence[int]) -> Iterator[Any]:
        keys = self.ref.keys
        positions = [keys[i] for i in indices]
        convert = self.ref.element
        for obj in self.ref.reader().iter_slices(iter([positions])):
            self.position += 1
            yield convert(obj)


class DataRef:
    """YogaDL's ``DataRef``: a stored (id, version); ``dataset`` is the hypermodel Dataset."""

    def __init__(self, storage: Storage, dataset_id: str, dataset_version: str) -> None:
        self.storage = storage
        self.dataset_id = dataset_id
        self.dataset_version = dataset_version
        self.meta: dict[str, Any] = storage._read_meta(dataset_id, dataset_version)
        self.length: int = int(self.meta["length"])
        self.kind: str = self.meta["kind"]
        data_type = load_type(self.meta["dataType"])
        self.dataset: Dataset = storage._dataset(dataset_id, dataset_version, data_type)
        self._keys: Sequence[int] | None = None

    def __repr__(self) -> str:
        return f"DataRef({self.dataset_id!r}, {self.dataset_version!r}, {self.storage.url})"

    def __len__(self) -> int:
        return self.length

    @property
    def keys(self) -> Sequence[int]:
        """The dataset position of each record, in submission order."""
        if self._keys is None:
            self._keys = self.storage._read_order(self.dataset_id, self.dataset_version)
        return self._keys

    def reader(self, **options: Any) -> DatasetStream:
        return DatasetStream(self.dataset, **options)

    def stream(
        self,
        start_offset: int = 0,
        shuffle: bool = False,
        skip_shuffle_at_epoch_end: bool = False,
        shuffle_seed: int | None = None,
        shard_rank: int = 0,
        num_shards: int = 1,
        drop_shard_remainder: bool = False,
    ) -> DataRefStream:
        """A stream of the records (see the module docstring for the order)."""
        return DataRefStream(
            self, start_offset, shuffle, skip_shuffle_at_epoch_end, shuffle_seed,
            shard_rank, num_shards, drop_shard_remainder,
        )  # fmt: skip

    # -- elements ---------------------------------------------------------------------------
    def output_spec(self) -> tuple[Any, Any]:
        """(output_types, output_shapes): tf structures for tensor records, the BaseData class
        and None otherwise."""
        if self.kind != TENSOR:
            return self.dataset.dataType, None
        tf = _tf()
        spec = self.element_spec
        types = tf.nest.map_structure(lambda s: s.dtype, spec)
        shapes = tf.nest.map_structure(lambda s: s.shape, spec)
        return types, shapes

    @functools.cached_property
    def element_spec(self) -> Any:
        """The ``tf.TypeSpec`` structure of a submitted ``tf.data.Dataset``'s elements."""
        if self.kind != TENSOR:
            raise DatasetUsageError(f"{self} holds {self.dataset.dataType.__name__} objects")
        return _decode_spec(_tf(), self.meta["spec"])

    def element(self, obj: Any) -> Any:
        if self.kind != TENSOR:
            return obj
        return _unflatten(self.element_spec, obj.value, self._leaf_dtypes)

    @functools.cached_property
    def _leaf_dtypes(self) -> list[Any]:
        return [s.dtype for s in _tf().nest.flatten(self.element_spec)]


# -- storages --------------------------------------------------------------------------------------
class Storage:
    """YogaDL's ``Storage``: ``submit``, ``fetch``, ``cacheable`` over a hypermodel bucket."""

    def __init__(
        self,
        configurations: Any = None,
        tensorflow_config: Any = None,
        *,
        chunkCount: int = 16,
        stale_after: float = 60.0,
        wait_timeout: float = 6 * 3600.0,
    ) -> None:
        # tensorflow_config (a tf.compat.v1.ConfigProto YogaDL used to read tf.data) is unused
        self.configurations = configurations
        self.bucket = self._open(configurations)
        self.chunkCount = chunkCount
        self.stale_after = stale_after
        self.wait_timeout = wait_timeout

    def _open(self, configurations: Any) -> BucketStorage:
        if isinstance(configurations, BucketStorage):
            return configurations
        if configurations is None:
            return resolve_storage(None)
        if isinstance(configurations, (LFSConfigurations, _BucketConfigurations)):
            return open_storage(configurations.url, **getattr(configurations, "options", {}))
        return open_storage(str(configurations))

    @property
    def url(self) -> str:
        return self.bucket.url

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    # -- the API ----------------------------------------------------------------------------
    def submit(self, data: Any, dataset_id: str, dataset_version: str) -> None:
        """Store ``data`` (an iterable of BaseData, or a ``tf.data.Dataset``) as
        (``dataset_id``, ``dataset_version``). A pair is written once: submitting it again
        raises DatasetExistsError (use a new version)."""
        cache = self._cache(dataset_id, dataset_version)
        if cache._ready() is not None:
            raise DatasetExistsError(
                f"dataset '{dataset_id}' version '{dataset_version}' already exists in "
                f"{self.url}; submit it under a new version"
            )
        built = []

        def build() -> Any:
            built.append(True)
            return data

        cache.get(build)
        if not built:
            raise DatasetExistsError(
                f"dataset '{dataset_id}' version '{dataset_version}' was submitted by another "
                f"process meanwhile in {self.url}"
            )

    def fetch(self, dataset_id: str, dataset_version: str) -> DataRef:
        """A ``DataRef`` of a submitted (id, version); DatasetNotFoundError names what is there."""
        return DataRef(self, dataset_id, dataset_version)

    def cacheable(
        self, dataset_id: str, dataset_version: str
    ) -> Callable[[Callable[..., Any]], Callable[..., DataRef]]:
        """Decorate a function returning a dataset (a ``tf.data.Dataset`` or BaseData
        objects): the first call anywhere stores its output, every call returns the
        ``DataRef``; concurrent callers wait for the one builder (``data/cacheable.py``)."""

        def decorate(fn: Callable[..., Any]) -> Callable[..., DataRef]:
            @functools.wraps(fn)
            def wrapper(*args: Any, **kwargs: Any) -> DataRef:
                self._cache(dataset_id, dataset_version).get(lambda: fn(*args, **kwargs))
                return self.fetch(dataset_id, dataset_version)

            return wrapper

        return decorate

    # -- layout ------------------------------------------------------------------------------
    def _cache(self, dataset_id: str, dataset_version: str) -> _YogaCache:
        check_name(dataset_id, "dataset_id")
        check_name(dataset_version, "dataset_version")
        return _YogaCache(self, dataset_id, dataset_version)

    def _meta_dir(self, dataset_id: str, dataset_version: str) -> str:
        return f"{PROJECT}/{dataset_id}/.claims-{dataset_version}"

    def _dataset(self, dataset_id: str, dataset_version: str, data_type: type) -> Dataset:
        return Dataset(
            data_type,  # type: ignore[arg-type]
            storage=self.bucket,
            project=PROJECT,
            branch=dataset_id,
            name=dataset_version,
            chunkCount=self.chunkCount,
            repoData={"yogadl": dataset_id, "version": dataset_version},
            versioned=False,
        )

    def _read_meta(self, dataset_id: str, dataset_version: str) -> dict[str, Any]:
        check_name(dataset_id, "dataset_id")
        check_name(dataset_version, "dataset_version")
        where = self._meta_dir(dataset_id, dataset_version)
        try:
            self.bucket.read_text(f"{where}/ready.json")
            return json.loads(self.bucket.read_text(f"{where}/meta.json"))  # type: ignore[no-any-return]
        except NotFoundError:
            pass
        versions = self.versions(dataset_id)
        known = (
            f"its versions are: {', '.join(versions)}"
            if versions
            else f"no version of '{dataset_id}' is stored there"
        )
        raise DatasetNotFoundError(
            f"dataset '{dataset_id}' version '{dataset_version}' is not in {self.url}; {known}"
        ) from None

    def _read_order(self, dataset_id: str, dataset_version: str) -> Sequence[int]:
        data = self.bucket.read_bytes(f"{self._meta_dir(dataset_id, dataset_version)}/order.bin")
        keys = array("q")
        keys.frombytes(data)
        if sys.byteorder != "little":
            keys.byteswap()
        return keys

    def versions(self, dataset_id: str) -> list[str]:
        """The submitted versions of ``dataset_id``, sorted."""
        found = set()
        for key in self.bucket.list(f"{PROJECT}/{dataset_id}"):
            parts = key.split("/")
            if len(parts) == 4 and parts[2].startswith(".claims-") and parts[3] == "ready.json":
                found.add(parts[2][len(".claims-") :])
        return sorted(found)


class LFSStorage(Storage):
    """YogaDL's ``LFSStorage(LFSConfigurations(path))``; a path or a Storage works too."""


class GCSStorage(Storage):
    """YogaDL's ``GCSStorage(GCSConfigurations(bucket, path, url))`` on ``gs://bucket/path``."""


class S3Storage(Storage):
    """YogaDL's ``S3Storage(S3Configurations(bucket, path, url, ...))`` on ``s3://bucket/path``."""


class _YogaCache(CacheBuild):
    """``data/cacheable``'s build protocol at the YogaDL layout, writing records in
    submission order with their positions (``order.bin``) and ``meta.json``."""

    def __init__(self, owner: Storage, dataset_id: str, dataset_version: str) -> None:
        super().__init__(
            dataset_id, dataset_version, owner.bucket, None, owner.chunkCount,
            owner.stale_after, max(owner.stale_after / 6, 0.05), owner.wait_timeout, 0.2,
        )  # fmt: skip
        self.owner = owner
        self.meta = owner._meta_dir(dataset_id, dataset_version)
        self.ready_key = f"{self.meta}/ready.json"
        self.claims = Claims(self.storage, self.meta, self.stale_after, self.heartbeat)
        self.where = f"dataset '{dataset_id}' version '{dataset_version}' in {owner.url}"

    def dataset(self, data_type: type) -> Dataset:
        return self.owner._dataset(self.id, self.version, data_type)

    def _write(self, build: Callable[[], Iterable[Any]]) -> Dataset:
        data = build()
        kind, spec, records = _records(data, self.where)
        first = next(records, None)
        data_type = TensorRecord if kind == TENSOR else type(first) if first is not None else None
        if data_type is None:
            raise DatasetUsageError(f"{self.where}: the data is empty; there is nothing to store")
        ds = self.dataset(data_type)
        chunks: list[str] = []
        if not ds.exists():
            with DatasetWriter(ds) as writer:
                for obj in _chain(first, records):
                    writer.append(obj)
                    chunks.append(ds.chunk_id_of(obj))
        else:  # a builder published, then died before ready.json: read the order back
            chunks = [ds.chunk_id_of(obj) for obj in ds]
        self._write_order(ds, chunks)
        meta = {"kind": kind, "length": len(chunks), "dataType": type_path(data_type)}
        if spec is not None:
            meta["spec"] = spec
        self.storage.write_text(f"{self.meta}/meta.json", json.dumps(meta))
        return ds

    def _write_order(self, ds: Dataset, chunks: list[str]) -> None:
        _header, index = open_index(ds)
        start = {c.chunk_id: s for c, s in zip(index.chunks, index.starts, strict=True)}
        keys = array("q", bytes(8 * len(chunks)))
        for i, chunk in enumerate(chunks):
            keys[i] = start[chunk]
            start[chunk] += 1
        if sys.byteorder != "little":
            keys.byteswap()
        self.storage.write_bytes(f"{self.meta}/order.bin", keys.tobytes())


def _chain(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    if first is not None:
        yield first
    yield from rest


# -- records ---------------------------------------------------------------------------------------
def _tf() -> Any:
    from .adapters import tensorflow

    return tensorflow("YogaDL tf.data streams")


def _is_tf_dataset(data: Any) -> bool:
    tf = sys.modules.get("tensorflow")
    return tf is not None and isinstance(data, tf.data.Dataset)


def _records(data: Any, where: str) -> tuple[str, Any, Iterator[Any]]:
    """(kind, encoded element spec, the records to write) of submitted data."""
    if _is_tf_dataset(data):
        tf = _tf()
        spec = data.element_spec
        encoded = _encode_spec(tf, spec)

        def tensors() -> Iterator[TensorRecord]:
            for i, element in enumerate(data.as_numpy_iterator()):
                leaves = [_leaf(v) for v in tf.nest.flatten(element)]
                yield TensorRecord(i, leaves)  # type: ignore[call-arg]  # generated __init__

        return TENSOR, encoded, tensors()
    if isinstance(data, BaseData) or not isinstance(data, Iterable):
        raise DatasetUsageError(
            f"{where}: submit an iterable of BaseData objects or a tf.data.Dataset, "
            f"not {type(data).__name__}"
        )

    def objects() -> Iterator[Any]:
        for obj in data:
            if not isinstance(obj, BaseData):
                raise DatasetUsageError(
                    f"{where}: records must be BaseData objects (or submit a tf.data.Dataset), "
                    f"got {type(obj).__name__}"
                )
            yield obj

    return OBJECT, None, objects()


def _leaf(value: Any) -> Any:
    """One leaf of an element as JSON: numbers as (nested) lists, bytes as base64 text."""
    if isinstance(value, bytes) or (hasattr(value, "dtype") and value.dtype.kind in "SO"):
        return {"b64": _b64(value.tolist() if hasattr(value, "tolist") else value)}
    return value.tolist() if hasattr(value, "tolist") else value


def _b64(value: Any) -> Any:
    if isinstance(value, list):
        return [_b64(v) for v in value]
    return base64.b64encode(value).decode("ascii")


def _unleaf(value: Any) -> Any:
    if isinstance(value, dict):
        return _unb64(value["b64"])
    return value


def _unb64(value: Any) -> Any:
    if isinstance(value, list):
        return [_unb64(v) for v in value]
    return base64.b64decode(value)


def _unflatten(spec: Any, leaves: list[Any], dtypes: list[Any]) -> Any:
    import numpy as np

    tf = _tf()
    arrays = [
        np.array(_unleaf(v), dtype=object if d == tf.string else d.as_numpy_dtype)
        for v, d in zip(leaves, dtypes, strict=True)
    ]
    # 0-d arrays become numpy scalars, as ``as_numpy_iterator`` yields them
    return tf.nest.pack_sequence_as(spec, [a[()] if a.ndim == 0 else a for a in arrays])


def _encode_spec(tf: Any, spec: Any) -> Any:
    if isinstance(spec, tf.TensorSpec):
        shape = None if spec.shape.rank is None else spec.shape.as_list()
        return {"tensor": {"dtype": spec.dtype.name, "shape": shape}}
    if isinstance(spec, dict):
        return {"dict": {k: _encode_spec(tf, v) for k, v in spec.items()}}
    if isinstance(spec, (tuple, list)):
        return {"tuple": [_encode_spec(tf, v) for v in spec]}
    raise DatasetUsageError(
        f"cannot store tf.data elements of spec {spec!r}: elements must be tensors, or tuples "
        "and dicts of tensors"
    )


def _decode_spec(tf: Any, encoded: Any) -> Any:
    if "tensor" in encoded:
        t = encoded["tensor"]
        return tf.TensorSpec(shape=t["shape"], dtype=tf.dtypes.as_dtype(t["dtype"]))
    if "dict" in encoded:
        return {k: _decode_spec(tf, v) for k, v in encoded["dict"].items()}
    return tuple(_decode_spec(tf, v) for v in encoded["tuple"])


def make_tf_dataset(stream: Stream) -> Any:
    """YogaDL's ``yogadl.tensorflow.make_tf_dataset``: a ``tf.data.Dataset`` whose every
    iteration is the stream's next epoch. BaseData records become ``to_data()`` dicts (the
    signature inferred from the first record as ``Stream.to_tf`` does).

    The stream keeps its place, as YogaDL's does: ``start_offset`` applies to its first epoch
    only, so ``make_tf_dataset(ref.stream(start_offset=5)).repeat(3)`` over 10 records yields
    25; iterating that dataset again (or each ``model.fit`` epoch) goes on with the next epochs.
    To start over, make a new stream (``ref.stream(...)``)."""
    tf = _tf()
    ref = getattr(stream, "ref", None)
    if ref is not None and ref.kind == TENSOR:
        return tf.data.Dataset.from_generator(stream.iterator_fn, output_signature=ref.element_spec)
    if ref is not None:
        from .adapters import tensor_spec

        first = next(iter(ref.reader().iter_slices(iter([ref.keys[:1]]))), None)
        if first is None:
            raise DatasetUsageError(f"cannot infer a signature from the empty {ref}")
        signature = {k: tensor_spec(tf, v, k) for k, v in first.to_data().items()}

        def generate() -> Iterator[Any]:
            return (obj.to_data() for obj in stream.iterator_fn())

        return tf.data.Dataset.from_generator(generate, output_signature=signature)
    return tf.data.Dataset.from_generator(
        stream.iterator_fn, output_types=stream.output_types, output_shapes=stream.output_shapes
    )


__all__ = [
    "DataRef",
    "DataRefStream",
    "GCSConfigurations",
    "GCSStorage",
    "LFSConfigurations",
    "LFSStorage",
    "S3Configurations",
    "S3Storage",
    "Storage",
    "Stream",
    "TensorRecord",
    "make_tf_dataset",
]
