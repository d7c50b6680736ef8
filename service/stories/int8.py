"""Int8 linear layers (``Int8Linear``): ``x @ w + b`` with 8-bit weights and activations, run by
onnxruntime's ``MatMulInteger`` (uint8 activations × int8 weights, which its CPU kernels compute
with AVX512-VNNI / AVX2 dot-product instructions where the processor has them).

The method is the affine integer quantisation of Jacob et al. (2018), "Quantization and Training
of Neural Networks for Efficient Integer-Arithmetic-Only Inference" (CVPR), applied after
training ("dynamic" quantisation of the activations), with the operator of the ONNX specification
(``MatMulInteger``, opset 10: int32 ``(A - a_zero_point) @ (B - b_zero_point)``):

- weights ``w`` (float32, [in, out]) symmetric per output column: ``ws = max|w[:, j]| / 127``,
  ``wq = rint(w / ws)`` as int8 (zero point 0), once at construction;
- activations ``x`` (float32, [n, in]) symmetric per row at each call: ``xs = max|x[i]| / 127``,
  ``xq = rint(x / xs) + 128`` as uint8 with the scalar zero point 128 (onnxruntime takes only a
  scalar or one-element zero point for A, and its int8 × int8 kernel is much slower than
  uint8 × int8);
- ``y = float32(MatMulInteger(xq, wq, 128)) * (xs[:, None] * ws[None, :]) + b``.

Each layer holds one onnxruntime ``InferenceSession`` of that single node (weights and zero point
as initializers, one intra-op and one inter-op thread), built in memory from ``onnx.helper``;
a call costs about 20-30 µs of overhead on top of the product. Sessions cannot be pickled: build
the layers after a model is loaded (or unpickled), not before caching it.

``available()`` says whether ``onnxruntime`` and ``onnx`` import; without them callers keep their
float32 products.
"""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)

# The uint8 zero point of the activations (``Int8Linear``): int8 values shifted into 0..255.
ZERO_POINT = 128
# The ONNX opset the graphs declare (``MatMulInteger`` exists since opset 10).
OPSET = 13


def available() -> bool:
    """Whether ``onnxruntime`` and ``onnx`` import (``Int8Linear`` needs both)."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def quantize_columns(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``w`` float32 [in, out] → (int8 [in, out], float32 scales [out]): symmetric per output
    column, ``w ≈ wq * scales`` (a zero column gets scale 1)."""
    amax = np.abs(w).max(axis=0).astype(np.float32)
    scales = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    wq = np.clip(np.rint(w / scales), -127, 127).astype(np.int8)
    return wq, scales


def quantize_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``x`` float32 [n, in] → (uint8 [n, in], float32 scales [n]): symmetric per row, shifted by
    ``ZERO_POINT``, ``x ≈ (xq - 128) * scales[:, None]`` (a zero row gets scale 1)."""
    amax = np.abs(x).max(axis=1)
    scales = np.where(amax > 0, amax * np.float32(1 / 127), np.float32(1)).astype(np.float32)
    q = x * np.reciprocal(scales)[:, None]
    np.rint(q, out=q)
    q += ZERO_POINT
    return q.astype(np.uint8), scales


def _session(wq: np.ndarray, threads: int = 1):  # -> onnxruntime.InferenceSession
    """An onnxruntime session of one ``MatMulInteger`` node: input ``x`` uint8 [n, in] → output
    ``y`` int32 [n, out], with ``wq`` and the zero point as initializers; ``threads`` intra-op
    threads, one inter-op thread."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    n_in, n_out = wq.shape
    node = helper.make_node("MatMulInteger", ["x", "w", "zp"], ["y"])
    graph = helper.make_graph(
        [node],
        "int8_linear",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, ["n", n_in])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, ["n", n_out])],
        initializer=[numpy_helper.from_array(wq, "w"), numpy_helper.from_array(np.array(ZERO_POINT, dtype=np.uint8), "zp")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = min(model.ir_version, 8)  # readable by older onnxruntime releases too
    onnx.checker.check_model(model)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


class Int8Linear:
    """``x @ w + b`` in int8 (see the module docstring). ``w``: float32 [in, out]; ``b``: float32
    [out] or None; ``threads``: onnxruntime's intra-op threads. ``__call__(x)``: ``x`` float32 [n, in] (any n ≥ 0) → float32 [n, out], a new
    array. Against float32 the products differ by the rounding of both operands to 8 bits
    (relative error of a few 0.1 % per output on dense inputs). Raises ``ImportError`` without
    onnxruntime or onnx."""

    def __init__(self, w: np.ndarray, b: np.ndarray | None = None, threads: int = 1) -> None:
        w = np.asarray(w, dtype=np.float32)
        if w.ndim != 2:
            raise ValueError(f"Int8Linear: w must be [in, out], got shape {w.shape}")
        self.n_in, self.n_out = w.shape
        wq, self.scales = quantize_columns(w)
        self.bias = None if b is None else np.asarray(b, dtype=np.float32).reshape(self.n_out)
        self._session = _session(wq, threads)
        self._run = self._session.run

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if x.shape[0] == 0:
            return np.zeros((0, self.n_out), dtype=np.float32)
        xq, xs = quantize_rows(x)
        (acc,) = self._run(None, {"x": xq})
        y = acc.astype(np.float32)
        y *= xs[:, None]
        y *= self.scales
        if self.bias is not None:
            y += self.bias
        return y
