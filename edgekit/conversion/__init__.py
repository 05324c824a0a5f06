"""Conversion: Keras / SavedModel -> TensorFlow Lite (TensorFlow is imported lazily, on first use)."""

from .pipeline import convert
from .result import ConvertResult

__all__ = ["convert", "ConvertResult"]
