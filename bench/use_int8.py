"""USE (``representation.UseEncoder``) in float32 against its int8 forward pass
(``stories.use_int8.Int8UseGraph``, one onnxruntime graph) and, with ``--baseline REV``, against the
per-layer int8 products of ``service/stories/use_int8.py`` at git revision ``REV`` (its
``Int8UseBatch``: one ``int8.Int8Linear`` session a product, the rest in numpy, with that
revision's ``int8``): CPU per article,
the cosine of every vector to float32's, and the graph's build and session CPU and size.

The texts are what ``features._screen`` encodes for an article in one call: its title + lead
(``representation_text``), and, for an article with a body, its headline and the body's first
``LEAD_CHARS`` characters; the articles are the first ``--articles`` distinct ones of the SemEval-2022
Task 8 dev pairs (``$NEWSLOOM_SHARED/corpus/crosslingual/pairs_dev.jsonl``). CPU is process time
(``time.process_time``), the encoders alternating for ``--rounds`` rounds.

Run: ``NEWSLOOM_SHARED=... python bench/use_int8.py [--articles 100] [--rounds 4] [--baseline 5b8ee22]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

from service.stories import int8, use_int8
from service.stories.features import fix_case, has_body, headline_and_body
from service.stories.representation import LEAD_CHARS, UseEncoder, representation_text


def article_texts(n: int) -> list[list[str]]:
    """The texts of ``_screen``'s encoder call for the first ``n`` distinct SemEval dev articles."""
    path = Path(os.environ.get("NEWSLOOM_SHARED", "/work/shared")) / "corpus/crosslingual/pairs_dev.jsonl"
    out: list[list[str]] = []
    seen: set[str] = set()
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            pair = json.loads(line)
            for side in (pair["a"], pair["b"]):
                if side["id"] in seen:
                    continue
                seen.add(side["id"])
                title, text = side.get("title"), side.get("text")
                texts = [representation_text(title, text)]
                if has_body(text):
                    head, body = headline_and_body(title, text)
                    texts += [fix_case(head), body[:LEAD_CHARS]]
                out.append(texts)
                if len(out) >= n:
                    return out
    return out


def _revision_module(revision: str, path: str, name: str) -> Any:
    """The module ``path`` of git ``revision`` (read with ``git show`` from this checkout), loaded
    as ``name``."""
    source = subprocess.run(["git", "show", f"{revision}:{path}"], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).resolve().parent).stdout
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as handle:
        handle.write(source)
    spec = importlib.util.spec_from_file_location(name, handle.name)
    assert spec is not None and spec.loader is not None
    module: Any = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    os.unlink(handle.name)
    return module


def baseline(revision: str) -> UseEncoder:
    """A float32 ``UseEncoder`` given the ``Int8UseBatch`` of ``service/stories/use_int8.py`` at
    git ``revision``, with that revision's ``service/stories/int8.py`` (its ``Int8Linear``)."""
    old_int8 = _revision_module(revision, "service/stories/int8.py", "int8_baseline")
    with mock.patch.dict(sys.modules, {"service.stories.int8": old_int8}):
        module = _revision_module(revision, "service/stories/use_int8.py", "use_int8_baseline")
    encoder = UseEncoder(int8=False)
    backend = encoder._raw.__self__._model  # type: ignore[attr-defined]
    backend._encode_batch = module.Int8UseBatch(backend, module.Int8UseBatch.quantised_layers(backend))
    return encoder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--baseline", metavar="REV", help="also time the per-layer Int8UseBatch of this git revision")
    args = parser.parse_args()
    articles = article_texts(args.articles)
    encoders = {"fp32": UseEncoder(int8=False), "int8 graph": UseEncoder(int8=True)}
    if not encoders["int8 graph"].int8:
        raise SystemExit("int8 forward pass unavailable (see the log)")
    backend = encoders["int8 graph"]._raw.__self__._model  # type: ignore[attr-defined]
    start = time.process_time()
    model = use_int8.Int8UseGraph.model(backend)
    built = time.process_time() - start
    start = time.process_time()
    int8.session(model, arena=False)
    print(f"graph: {len(model) / 1e6:.1f} MB; built in {built:.2f} s CPU (with onnx's import where the encoder's came from the cache),"
          f" its session in {time.process_time() - start:.3f} s CPU")
    if args.baseline:
        encoders[f"int8 per layer ({args.baseline})"] = baseline(args.baseline)
    vectors = {name: [enc.encode(texts) for texts in articles] for name, enc in encoders.items()}
    print(f"{len(articles)} articles, {sum(map(len, articles))} texts")
    for name in list(encoders)[1:]:
        cosines = np.concatenate([np.einsum("ij,ij->i", a, b) for a, b in zip(vectors["fp32"], vectors[name], strict=True)])
        print(f"cosine {name} to fp32: min {cosines.min():.5f}, median {np.median(cosines):.5f}")
    times: dict[str, list[float]] = {name: [] for name in encoders}
    for _ in range(args.rounds):
        for name, enc in encoders.items():
            start = time.process_time()
            for texts in articles:
                enc.encode(texts)
            times[name].append((time.process_time() - start) / len(articles) * 1e3)
    for name, values in times.items():
        median = np.median(values)
        print(f"{name}: ms CPU an article per round " + " ".join(f"{v:.2f}" for v in values)
              + f"; median {median:.2f} ({median / np.median(times['fp32']):.3f} of fp32's)")


if __name__ == "__main__":
    main()
