"""MXNet 1.9.1 on the numpy and onnx that each supported Python has (setup.py pins them by version).

MXNet 1.9.1 (its last release) uses numpy's aliases ``np.bool``, ``np.int``, ``np.float``, ``np.object``,
``np.complex`` and ``np.str``, which numpy 1.24 removed; Python 3.12 has no numpy older than 1.26. The
aliases were always the builtins themselves, so putting them back is exact. It must happen before
``import mxnet``: ``tinyvideo_mx/__init__.py`` calls ``restore_aliases`` first, and every entry point
(the CLI, the MMS handler, the tests, the benchmarks) imports tinyvideo_mx before MXNet. (MXNet also
imports ``distutils``, gone from 3.12's standard library: setuptools, a dependency on 3.12, provides it.)

MXNet's ONNX exporter reads ``onnx.mapping``'s two dtype tables, which onnx 1.16 removed; onnx 1.15 has no
wheels for 3.12. ``onnx_mapping`` rebuilds the module from ``onnx.helper``'s conversions where it is
missing (export.py calls it before exporting).
"""
import sys
import types

import numpy as np

REMOVED_ALIASES = {"bool": bool, "int": int, "float": float, "object": object, "complex": complex, "str": str}


def restore_aliases():
    """Put back the aliases this numpy lacks; returns their names."""
    restored = []
    for name, builtin in REMOVED_ALIASES.items():
        if name not in np.__dict__:
            setattr(np, name, builtin)
            restored.append(name)
    return restored


def onnx_mapping():
    """``onnx.mapping`` with NP_TYPE_TO_TENSOR_TYPE / TENSOR_TYPE_TO_NP_TYPE, made from onnx.helper where
    this onnx no longer has it; returns the module."""
    import onnx
    if hasattr(onnx, "mapping"):
        return onnx.mapping
    from onnx import helper
    tensor_to_np = {}
    for tensor_type in onnx.TensorProto.DataType.values():
        try:
            tensor_to_np[tensor_type] = np.dtype(helper.tensor_dtype_to_np_dtype(tensor_type))
        except (KeyError, TypeError, ValueError):
            continue             # UNDEFINED and types numpy has no dtype for
    mapping = types.ModuleType("onnx.mapping")
    mapping.TENSOR_TYPE_TO_NP_TYPE = tensor_to_np
    # the old table's inverse: the first tensor type of each dtype (FLOAT before BFLOAT16's storage, ...)
    mapping.NP_TYPE_TO_TENSOR_TYPE = {}
    for tensor_type in sorted(tensor_to_np):
        mapping.NP_TYPE_TO_TENSOR_TYPE.setdefault(tensor_to_np[tensor_type], tensor_type)
    onnx.mapping = mapping
    sys.modules["onnx.mapping"] = mapping
    return mapping
