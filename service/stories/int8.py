"""The story encoders' forward passes as onnxruntime graphs whose dense products are 8-bit integer
arithmetic.

``Graph`` builds an ONNX model node by node; ``Graph.linear`` computes ``x @ w + b`` as an integer
matrix product: the weights quantised once, symmetrically per output column (``ws = max |w[:, j]|
/ 127``, int8); the activations quantised in the graph per row, symmetrically (``xs = max |x[i, :]|
/ 127``), stored as uint8 with the zero point 128 (``QuantizeLinear`` along axis 0), so that
onnxruntime's ``MatMulIntegerToFloat`` takes its uint8 × int8 kernels (VNNI or AVX2 integer dot
products: several times the fp32 product's rate on one core) and applies the column scales; then
the row scales and the bias. Per-row activation scales follow the per-token quantisation of
transformer activations (Dettmers et al. 2022, "LLM.int8()", NeurIPS); integer products with float
rescaling as in Jacob et al. 2018, "Quantization and Training of Neural Networks for Efficient
Integer-Arithmetic-Only Inference", CVPR. ``a_zero_point`` is a scalar (onnxruntime's kernels take
no zero point per row), hence the shared 128. A whole forward pass is one graph (``session``): the
quantisation, rescaling and the float32 work between the products run in onnxruntime's kernels,
not as numpy passes of their own.

Measured (2026-12-04): multilingual-e5-small (``e5_float.Int8E5``) 39.5 / 41.2 ms CPU a 600-character
text against 101.5 / 95.5 in float32 and 53.0 / 49.0 with one onnxruntime session a product and
numpy between them, vectors within a cosine of 0.9991 of float32's (``bench/e5_numpy.py``); USE's
per-token pass (``use_int8``) 6.85 ms an article against 14.22 in float32 and 8.65 with a session a
product, within 0.9995 (``bench/use_int8.py --baseline 5b8ee22``).
"""

from __future__ import annotations

from importlib.util import find_spec
from typing import Any

import numpy as np

OPSETS = (("", 17), ("com.microsoft", 1))
"""The operator sets of ``Graph``'s models: ONNX 17 (``LayerNormalization``) and onnxruntime's
contributed operators (``MatMulIntegerToFloat``, ``Gelu``), which its CPU provider implements."""

ZERO_POINT = 128
"""The activations' zero point: uint8 128 stands for int8 0."""


def available() -> bool:
    """Whether onnxruntime and onnx (which builds the graphs: ``Graph``) are
    installed (looked up, not imported: importing onnx costs about 0.8 s of CPU)."""
    return find_spec("onnxruntime") is not None and find_spec("onnx") is not None


_TINY = np.finfo(np.float32).tiny


def _columns(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``w`` float32 (in, out) quantised per column, symmetrically: scales float32 (out) and
    int8 (in, out)."""
    scales = (np.maximum(np.abs(w).max(axis=0), _TINY) / 127).astype(np.float32)
    return scales, np.clip(np.rint(w / scales), -127, 127).astype(np.int8)


class Graph:
    """An ONNX model built node by node (``onnx.helper``; importing this imports onnx), whose dense
    products are int8 (``linear``): a whole forward pass, run in one onnxruntime session
    (``session``)."""

    def __init__(self) -> None:
        from onnx import helper, numpy_helper

        self._helper, self._numpy = helper, numpy_helper
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []

    def _name(self, hint: str) -> str:
        return f"{hint}{len(self.nodes) + len(self.initializers)}"

    def const(self, value: np.ndarray | np.generic) -> str:
        """The name of a new initializer holding ``value`` (its dtype kept)."""
        name = self._name("c")
        self.initializers.append(self._numpy.from_array(np.asarray(value), name))
        return name

    def op(self, kind: str, *inputs: str, domain: str = "", **attributes: Any) -> str:
        """Appends a node of operator ``kind`` (of ``domain``) and returns its one output's name."""
        (output,) = self.ops(kind, *inputs, outputs=1, domain=domain, **attributes)
        return output

    def ops(self, kind: str, *inputs: str, outputs: int, domain: str = "", **attributes: Any) -> list[str]:
        """As ``op`` for an operator with ``outputs`` outputs (``Split``)."""
        names = [self._name(kind) + f"_{i}" for i in range(outputs)]
        self.nodes.append(self._helper.make_node(kind, list(inputs), names, domain=domain, **attributes))
        return names

    def linear(self, x: str, w: np.ndarray, b: np.ndarray | None = None) -> str:
        """``x @ w + b`` for ``x`` float32 (n, in), ``w`` float32 (in, out), ``b`` float32 (out) or
        None, in int8 (see the module): ``w`` quantised per column here, ``x`` per row in the graph
        (``QuantizeLinear`` along axis 0, zero point 128), the product and the column scales in
        onnxruntime's ``MatMulIntegerToFloat``, then the row scales and the bias. Returns the
        output's name (float32 (n, out)). Raises ``ImportError`` without onnx."""
        from onnx import numpy_helper

        scales, weights = _columns(w)
        row_max = self.op("ReduceMax", self.op("Abs", x), axes=[-1], keepdims=0)
        rows = self.op("Div", self.op("Max", row_max, self.const(np.float32(_TINY))), self.const(np.float32(127)))
        zero = self.op("ConstantOfShape", self.op("Shape", rows), value=numpy_helper.from_array(np.array([ZERO_POINT], np.uint8)))
        quantised = self.op("QuantizeLinear", x, rows, zero, axis=0)
        product = self.op("MatMulIntegerToFloat", quantised, self.const(weights), self.const(np.float32(1)), self.const(scales),
                          self.const(np.uint8(ZERO_POINT)), domain="com.microsoft")
        out = self.op("Mul", product, self.op("Unsqueeze", rows, self.const(np.array([1], np.int64))))
        return out if b is None else self.op("Add", out, self.const(b.astype(np.float32)))

    def layernorm(self, x: str, weights: tuple[np.ndarray, np.ndarray], eps: float) -> str:
        """Layer normalisation of ``x``'s last axis with ``weights`` (scale, bias; ONNX
        ``LayerNormalization``)."""
        scale, bias = (self.const(w.astype(np.float32)) for w in weights)
        return self.op("LayerNormalization", x, scale, bias, axis=-1, epsilon=float(eps))

    def model(self, inputs: dict[str, list[Any]], output: str, shape: list[Any], types: dict[str, type] | None = None) -> bytes:
        """The serialized model: ``inputs`` (name -> shape, a str for a free dimension), float32
        unless ``types`` names another numpy dtype for one; the float32 tensor ``output`` of
        ``shape``."""
        from onnx import TensorProto

        helper, types = self._helper, types or {}
        graph = helper.make_graph(
            self.nodes, "newsloom",
            [helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(np.dtype(types.get(name, np.float32))), dims)
             for name, dims in inputs.items()],
            [helper.make_tensor_value_info(output, TensorProto.FLOAT, shape)],
            self.initializers,
        )
        opsets = [helper.make_opsetid(domain, version) for domain, version in OPSETS]
        return helper.make_model(graph, opset_imports=opsets).SerializeToString()


def session(model: bytes, threads: int = 1, arena: bool = True) -> Any:
    """An onnxruntime session of ``model`` (``Graph.model``) on the CPU, ``threads`` threads for
    each operator; ``arena``: onnxruntime's CPU memory arena (which keeps its largest buffers
    between runs). Raises ``ImportError`` without onnxruntime."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.enable_cpu_mem_arena = arena
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
