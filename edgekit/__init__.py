"""edgekit: ship trained models to edge devices.

The package import is light: it never imports TensorFlow. ``edgekit.convert``
loads TensorFlow only when called.

Example:
    >>> import edgekit
    >>> result = edgekit.convert("digits.keras", "digits-int8.tflite", recipe="int8",
    ...                          calibration="calib.npz", eval_data="eval.npz")  # doctest: +SKIP
"""

__version__ = "0.1.0"


def convert(*args, **kwargs):
    """Convert a Keras / SavedModel source to .tflite + manifest; see edgekit.conversion.pipeline.convert."""
    from .conversion.pipeline import convert as _convert

    return _convert(*args, **kwargs)
