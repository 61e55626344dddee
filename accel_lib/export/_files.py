"""Model files: check that a path holds the format a function accepts, before a runtime
fails on it with a message about protobufs or flatbuffers."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["FORMATS", "model_format", "check_model_file", "file_size_bytes"]

# format -> (file suffix, how the file's first bytes identify it)
FORMATS = {"onnx": ".onnx", "tflite": ".tflite"}
_NAMES = {"onnx": "ONNX", "tflite": "TFLite"}


def model_format(path: str | os.PathLike) -> str | None:
    """``"onnx"``, ``"tflite"`` or ``None``, from the file's bytes (not its name).

    A TFLite file is a FlatBuffer whose identifier ``TFL3`` sits at bytes 4..8; an ONNX file
    is a protobuf ``ModelProto`` that parses (``onnx.load``) and has a graph.
    """
    p = Path(path)
    if not p.is_file():
        return None
    head = p.read_bytes()[:8]
    if head[4:8] == b"TFL3":
        return "tflite"
    try:
        import onnx

        proto = onnx.load(str(p), load_external_data=False)
    except Exception:  # noqa: BLE001  (any parse failure means: not ONNX)
        return None
    return "onnx" if len(proto.graph.node) > 0 else None


def check_model_file(path: object, accepted: tuple[str, ...] = ("onnx", "tflite"),
                     name: str = "path") -> Path:
    """Return ``path`` as a ``Path`` if it is a file in one of the ``accepted`` formats.

    Raises TypeError for a non-path, ValueError naming the path and the accepted formats for
    a missing file or one in another format (e.g. a ``.pt`` checkpoint given to ONNX Runtime).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path (str or os.PathLike) to a "
                        f"{' or '.join(accepted)} model file, got {type(path).__name__}")
    p = Path(path)
    what = " or ".join(f"{_NAMES[f]} ({FORMATS[f]})" for f in accepted)
    article = "an" if what.startswith("O") else "a"
    if not p.is_file():
        raise ValueError(f"{name} must be an existing {what} model file, got {str(p)!r} "
                         "(no such file)")
    got = model_format(p)
    if got not in accepted:
        kind = f"a {_NAMES[got]} model" if got else "not a model file this course reads"
        raise ValueError(f"{name} must be {article} {what} model file, got {str(p)!r}: "
                         f"it is {kind}")
    return p


def file_size_bytes(path: str | os.PathLike) -> int:
    """Bytes of a model file on disk."""
    return Path(path).stat().st_size
