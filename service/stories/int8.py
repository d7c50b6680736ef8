"""Dense layers of the story encoders in 8-bit integer arithmetic, through onnxruntime.

``Int8Linear(quantised(w, b))(x)`` computes ``x @ w + b`` as an integer matrix product: the weights
quantised once (``quantised``), symmetrically per output column (``ws = max |w[:, j]| / 127``, int8); each call's activations
quantised per row, symmetrically (``xs = max |x[i, :]| / 127``), stored as uint8 with the zero point
128, so that onnxruntime's ``MatMulInteger`` takes its uint8 × int8 kernels (VNNI or AVX2 integer dot
products: several times the fp32 product's rate on one core) and its result equals the int8 × int8
product exactly; then ``acc * xs[:, None] * ws[None, :] + b`` in float32. Per-row activation scales
follow the per-token quantisation of transformer activations (Dettmers et al. 2022, "LLM.int8()",
NeurIPS); integer products with float rescaling as in Jacob et al. 2018, "Quantization and Training
of Neural Networks for Efficient Integer-Arithmetic-Only Inference", CVPR. Operator: ONNX
``MatMulInteger`` (opset 10), whose ``a_zero_point`` onnxruntime accepts only as a scalar, hence the
shared 128 rather than a zero point per row.

Measured: multilingual-e5-small's dense products (``e5_float.Int8E5``) 1.9x less CPU a
600-character text, vectors within a cosine of 0.9991 of the float32 pass (``bench/e5_numpy.py``);
USE's per-token pass as one ``Graph`` (``use_int8``) half the CPU an article, within 0.9995
(``bench/use_int8.py``).
"""

from __future__ import annotations

from importlib.util import find_spec
from typing import Any, NamedTuple

import numpy as np

OPSETS = (("", 17), ("com.microsoft", 1))
"""The operator sets of ``Graph``'s models: ONNX 17 (``LayerNormalization``) and onnxruntime's
contributed operators (``MatMulIntegerToFloat``, ``Gelu``), which its CPU provider implements."""

ZERO_POINT = 128
"""The activations' zero point: uint8 128 stands for int8 0."""


def available() -> bool:
    """Whether onnxruntime and onnx (which builds the operator's graph: ``quantised``) are
    installed (looked up, not imported: importing onnx costs about 0.8 s of CPU)."""
    return find_spec("onnxruntime") is not None and find_spec("onnx") is not None


_TINY = np.finfo(np.float32).tiny


def _columns(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``w`` float32 (in, out) quantised per column, symmetrically: scales float32 (out) and
    int8 (in, out)."""
    scales = (np.maximum(np.abs(w).max(axis=0), _TINY) / 127).astype(np.float32)
    return scales, np.clip(np.rint(w / scales), -127, 127).astype(np.int8)


class Int8Weights(NamedTuple):
    """A dense layer quantised for ``Int8Linear`` (picklable, so a story worker keeps it in the
    per-user cache and imports onnx only to build it)."""

    model: bytes
    """An ONNX model (opset 13) of one ``MatMulInteger`` node: input ``x`` uint8 (n, in), the int8
    weights (in, out) and the zero point 128 as initializers, output int32 (n, out)."""
    scales: np.ndarray
    """float32 (out): each output column's weight scale."""
    bias: np.ndarray | None
    """float32 (out), or None."""


def quantised(w: np.ndarray, b: np.ndarray | None = None) -> Int8Weights:
    """``w`` float32 (in, out) and ``b`` float32 (out) or None as ``Int8Weights``: each column of
    ``w`` quantised symmetrically to int8 (scale ``max |w[:, j]| / 127``). Raises ``ImportError``
    without onnx."""
    from onnx import TensorProto, helper, numpy_helper

    scales, weights = _columns(w)
    rows, columns = weights.shape
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["x", "w", "x_zero"], ["y"])],
        "int8_linear",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, ["n", rows])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, ["n", columns])],
        [numpy_helper.from_array(weights, "w"), numpy_helper.from_array(np.array(ZERO_POINT, np.uint8), "x_zero")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    return Int8Weights(model.SerializeToString(), scales, None if b is None else b.astype(np.float32))


class Graph:
    """An ONNX model built node by node (``onnx.helper``; importing this imports onnx), whose dense
    products are int8 (``linear``): a whole forward pass in one onnxruntime session (``session``),
    so that the quantisation, rescaling and the float32 work between the products run in
    onnxruntime's kernels rather than as numpy passes of their own (e5: 30 % less CPU a text than
    ``Int8Linear`` per layer, ``bench/e5_numpy.py``)."""

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
        None, in int8 as ``Int8Linear`` computes it: ``w`` quantised per column here, ``x`` per row
        in the graph (``QuantizeLinear`` along axis 0, zero point 128), the product and the column
        scales in onnxruntime's ``MatMulIntegerToFloat``, then the row scales and the bias."""
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

    def layernorm(self, x: str, weight: np.ndarray, bias: np.ndarray, eps: float) -> str:
        """Layer normalisation of ``x``'s last axis (ONNX ``LayerNormalization``)."""
        return self.op("LayerNormalization", x, self.const(weight.astype(np.float32)), self.const(bias.astype(np.float32)),
                       axis=-1, epsilon=float(eps))

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


class Int8Linear:
    """``x @ w + b`` in 8-bit integer arithmetic (see the module), for the layer ``weights``
    (``quantised``); ``threads``: onnxruntime's threads for the product. Calling it with float32
    (n, in) gives float32 (n, out). Raises ``ImportError`` without onnxruntime."""

    def __init__(self, weights: Int8Weights, threads: int = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.enable_cpu_mem_arena = False  # its outputs are small, and an arena per layer keeps their peak
        self._session: Any = ort.InferenceSession(weights.model, options, providers=["CPUExecutionProvider"])
        self.scales, self.bias = weights.scales, weights.bias

    def __call__(self, x: np.ndarray) -> np.ndarray:
        row_scales = np.maximum(np.abs(x).max(axis=1), np.finfo(np.float32).tiny) / np.float32(127)
        quantised = np.rint(x / row_scales[:, None])
        quantised += ZERO_POINT
        (product,) = self._session.run(None, {"x": quantised.astype(np.uint8)})
        out = product.astype(np.float32)
        out *= row_scales[:, None].astype(np.float32)
        out *= self.scales
        if self.bias is not None:
            out += self.bias
        return out
