"""How a dataset's files are written, read, published and cleaned up, below ``Dataset``.

- ``address``: ``DatasetAddress``, where one version of a dataset lives (storage, keys, the
  local directory); what the modules below take to find files.
- ``header``: the ``.chk`` and ``.def`` of a published dataset, read and checked.
- ``writer``: ``DatasetWriter`` and ``ChunkWriter`` (buffering, gzip members, uploads).
- ``staging``: where chunks wait, under names no reader looks at, until they are published.
- ``publish``: the publish claim and the commit (chunks, index, ``.def``, last the ``.chk``).
- ``claims``: numbered create-if-absent claims with takeover from dead holders.
- ``reader``: ``DatasetReader``, every chunk's SHA1 verified while it is decompressed.
- ``index``: the random-access index of records inside chunks.
- ``stream``: training streams (shuffle, shards, resume, prefetch) over the index.
- ``leftovers``: what interrupted writers left beside a published dataset.

The modules use each other's public names only; ``Dataset`` (``hypermodel.data.dataset``) is
the surface users see.
"""
