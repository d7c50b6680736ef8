"""USE (``representation.UseEncoder``) in float32 against its int8 per-token products
(``stories.use_int8``): CPU per article and the cosine of every vector to float32's.

The texts are what ``features._screen`` encodes for an article in one call: its title + lead
(``representation_text``), and, for an article with a body, its headline and the body's first
``LEAD_CHARS`` characters; the articles are the first ``--articles`` distinct ones of the SemEval-2022
Task 8 dev pairs (``$NEWSLOOM_SHARED/corpus/crosslingual/pairs_dev.jsonl``). CPU is process time
(``time.process_time``), the two encoders alternating for ``--rounds`` rounds.

Run: ``NEWSLOOM_SHARED=... python bench/use_int8.py [--articles 100] [--rounds 4]``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    articles = article_texts(args.articles)
    encoders = {"fp32": UseEncoder(int8=False), "int8": UseEncoder(int8=True)}
    if not encoders["int8"].int8:
        raise SystemExit("int8 products unavailable (see the log)")
    vectors = {name: [enc.encode(texts) for texts in articles] for name, enc in encoders.items()}
    cosines = np.concatenate([np.einsum("ij,ij->i", a, b) for a, b in zip(vectors["fp32"], vectors["int8"], strict=True)])
    print(f"{len(articles)} articles, {len(cosines)} texts; cosine int8 to fp32: min {cosines.min():.5f}, median {np.median(cosines):.5f}")
    times: dict[str, list[float]] = {name: [] for name in encoders}
    for _ in range(args.rounds):
        for name, enc in encoders.items():
            start = time.process_time()
            for texts in articles:
                enc.encode(texts)
            times[name].append((time.process_time() - start) / len(articles) * 1e3)
    for name, values in times.items():
        print(f"{name}: ms CPU an article per round " + " ".join(f"{v:.2f}" for v in values) + f"; median {np.median(values):.2f}")
    print(f"int8 / fp32 (medians): {np.median(times['int8']) / np.median(times['fp32']):.3f}")


if __name__ == "__main__":
    main()
