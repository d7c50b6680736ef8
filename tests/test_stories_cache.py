"""The story worker's per-user cache (``service.stories.cache``): what it reads back is what the
build gives (the gazetteer and its sibling tables equal, USE vectors bit for bit), the USE weights
are memory-mapped from it, and a corrupt, foreign, stale or unwritable cache only costs the build,
logged once."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest

from service.stories import cache, figures, names
from service.stories.representation import UseEncoder, _loaded_use

TEXTS = [
    "Peking meldet 12.000 neue Fälle; die Vereinten Nationen tagen am Dienstag.",
    "THE BACHELOR FINALE RECAP: WHO GOT THE ROSE?",
    "Erdoğan'ın açıklaması Ankara'da 3 bin 692 kişiyi etkiledi",  # noqa: RUF001 (Turkish dotless i)
    "الأمم المتحدة تعقد اجتماعا طارئا في نيويورك",
    "北京市政府周二宣布新的防疫措施，此主题相关图片如下",  # noqa: RUF001 (a Chinese comma)
    "Ünïcødé\u200b zero\u00a0width and 🇺🇦 flags \ufeff",
    "\ud800 a lone surrogate from a JSON escape",
    "",
    " ",
    "word " * 700,
]


@pytest.fixture
def cache_home(tmp_path, monkeypatch) -> Path:
    """An empty ``XDG_CACHE_HOME``; the process-wide tables are read from it afresh."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(cache, "_warned", set())
    for function in (names.gazetteer, names._codes, figures._months):
        function.cache_clear()
    yield tmp_path / "newsloom"
    for function in (names.gazetteer, names._codes, figures._months):
        function.cache_clear()


def test_the_cached_gazetteer_codes_and_months_are_the_ones_built(cache_home):
    built = (names._build_gazetteer(), frozenset(names._build_codes()), frozenset(figures._build_months()))
    first = (names.gazetteer(), names._codes(), figures._months())  # built and written
    assert sorted(p.name.rsplit("-", 1)[0] for p in cache_home.iterdir()) == ["gazetteer", "month-names", "territory-codes"]
    for function in (names.gazetteer, names._codes, figures._months):
        function.cache_clear()
    read = (names.gazetteer(), names._codes(), figures._months())
    assert first == read == built
    assert read[0]["peking"] == read[0]["beijing"] and read[0]["vereinte nationen"] == "c:UN"
    assert names.named_things("Die Vereinten Nationen tagen in Peking.", "de") == frozenset({"c:UN", read[0]["peking"]})


def test_use_read_from_the_cache_encodes_bit_for_bit_as_the_wheels_and_maps_its_weights(cache_home):
    fresh = UseEncoder.__new__(UseEncoder)
    fresh._raw = _loaded_use(1).encode
    expected = [fresh.encode(TEXTS), *(fresh.encode([text]) for text in TEXTS)]  # one batch, then each alone
    UseEncoder(int8=False)  # builds and writes the entry
    (entry,) = cache_home.glob("use-*.pickle")
    cached = UseEncoder(int8=False)  # reads it (float32, as the wheel: int8 is tests/test_stories_int8.py's)
    for vectors, texts in zip(expected, [TEXTS, *([text] for text in TEXTS)], strict=True):
        assert np.array_equal(cached.encode(texts), vectors)
    maps = Path("/proc/self/maps").read_text()
    assert str(entry) in maps  # the weights are pages of the entry, not copies


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "shared-writable"])
def test_a_damaged_or_foreign_entry_is_built_again_and_logged_once(cache_home, caplog, damage):
    calls = []

    def build():
        calls.append(1)
        return {"a": np.arange(1000, dtype=np.float32), "b": ["x", 2]}

    cache.cached_object("thing", "k1", build)
    (entry,) = cache_home.glob("thing-k1.pickle")
    data = entry.read_bytes()
    if damage == "garbage":
        entry.write_bytes(os.urandom(len(data)))
    elif damage == "truncated":
        entry.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        entry.write_bytes(b"")
    else:
        entry.chmod(0o666)
    caplog.set_level(logging.WARNING, logger="service.stories.cache")
    for _ in range(2):
        value = cache.cached_object("thing", "k1", build)
        assert np.array_equal(value["a"], np.arange(1000, dtype=np.float32)) and value["b"] == ["x", 2]
        if damage == "shared-writable":
            entry.chmod(0o666)  # still not read: anyone could have written it
    assert len(calls) == 3 if damage == "shared-writable" else len(calls) == 2  # the rewritten entry is read
    assert len([r for r in caplog.records if "not read" in r.getMessage()]) == 1


@pytest.mark.parametrize("written", ["null", "{}", "[]", '["Berlin"]', '{"berlin": 7}', '"berlin"'])
def test_a_json_entry_of_another_shape_is_built_again_and_logged_once(cache_home, caplog, written):
    """Valid JSON of the wrong shape (an entry written by hand, or by another build) is no
    gazetteer: not read, logged once, built and written again."""
    calls = []

    def build():
        calls.append(1)
        return {"berlin": "g:2950159"}

    assert cache.cached_json("thing", "k1", build, dict) == {"berlin": "g:2950159"}
    (entry,) = cache_home.glob("thing-k1.json")
    entry.write_text(written)
    caplog.set_level(logging.WARNING, logger="service.stories.cache")
    for _ in range(2):
        assert cache.cached_json("thing", "k1", build, dict) == {"berlin": "g:2950159"}
    assert len(calls) == 2  # the rewritten entry is read
    assert len([r for r in caplog.records if "not read" in r.getMessage()]) == 1


def test_an_unwritable_cache_builds_each_time_and_logs_once(tmp_path, monkeypatch, caplog):
    home = tmp_path / "a-file"
    home.write_text("not a directory")
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    monkeypatch.setattr(cache, "_warned", set())
    caplog.set_level(logging.WARNING, logger="service.stories.cache")
    calls = []
    for _ in range(3):
        assert cache.cached_json("thing", "k1", lambda: calls.append(1) or {"x": "y"}, dict) == {"x": "y"}
    assert len(calls) == 3
    assert len([r for r in caplog.records if "not written" in r.getMessage()]) == 1


def test_another_key_builds_anew_and_the_older_entries_of_other_keys_are_removed(cache_home):
    assert cache.cached_json("thing-else", "k1", lambda: {"v": "3"}, dict) == {"v": "3"}
    assert cache.cached_json("thing", "k1", lambda: {"v": "1"}, dict) == {"v": "1"}
    assert cache.cached_json("thing", "k1", lambda: {"v": "never built"}, dict) == {"v": "1"}
    os.utime(cache_home / "thing-k1.json", (1, 1))  # written long ago
    assert cache.cached_json("thing", "k2", lambda: {"v": "2"}, dict) == {"v": "2"}
    assert cache.cached_json("thing", "k1", lambda: {"v": "never built"}, dict) == {"v": "1"}  # two versions side by side
    assert cache.cached_json("thing", "k3", lambda: {"v": "3"}, dict) == {"v": "3"}
    assert sorted(p.name for p in cache_home.iterdir()) == ["thing-else-k1.json", "thing-k2.json", "thing-k3.json"]
    assert json.loads((cache_home / "thing-k2.json").read_text()) == {"v": "2"}


def test_the_key_follows_the_versions_and_files_that_build_an_entry(tmp_path):
    source = tmp_path / "source.py"
    source.write_text("A = 1\n")
    one = cache.key(("numpy",), (source,))
    assert cache.key(("numpy",), (source,)) == one
    source.write_text("A = 2\n")
    assert cache.key(("numpy",), (source,)) != one
    assert cache.key(("numpy", "no-such-distribution"), (source,)) != cache.key(("numpy",), (source,))
    assert cache.key(extra="threads=1") != cache.key(extra="threads=2")
