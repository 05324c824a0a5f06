"""Every error edgekit raises on purpose.

Each message is one line: what went wrong, with which file or value, and what to
do next. The CLI prints ``error: <message>`` and exits with ``exit_code``
(2 for bad input, 1 for a failed check or budget), never a traceback.

Example:
    >>> try:
    ...     raise DataError("calib.npy: contains NaN; clean the data or drop those samples")
    ... except EdgekitError as err:
    ...     print(err.exit_code, err)
    2 calib.npy: contains NaN; clean the data or drop those samples
"""

from __future__ import annotations


class EdgekitError(Exception):
    """Base class: a user-facing error with a one-line message."""

    exit_code = 2


class UsageError(EdgekitError):
    """An option or argument that cannot work (conflicting flags, bad value)."""


class MissingDependencyError(EdgekitError):
    """An optional package is needed for this step; the message says which to install."""


class SourceModelError(EdgekitError):
    """The source model (.keras, .h5, SavedModel) is missing, corrupt or unsupported."""


class ConversionError(EdgekitError):
    """The TensorFlow Lite converter refused the model (unsupported op, bad recipe)."""


class RecipeError(EdgekitError):
    """A conversion recipe is unknown or malformed."""


class DeviceProfileError(EdgekitError):
    """A device profile is unknown or malformed."""


class DataError(EdgekitError):
    """Calibration, evaluation or inference data that does not fit the model."""


class ManifestError(EdgekitError):
    """A manifest is missing, malformed, or from an unknown schema version."""


class ModelLoadError(EdgekitError):
    """A .tflite file that cannot be loaded safely (corrupt, truncated, hostile, custom ops)."""


class TamperedModelError(ModelLoadError):
    """The model bytes do not match the sha256 recorded in its manifest."""


class InputValidationError(EdgekitError):
    """Input rejected by the runtime guard (shape, dtype, NaN/Inf, range, size)."""


class OutputValidationError(EdgekitError):
    """Model output rejected by the runtime guard (NaN/Inf, not a distribution)."""


class InferenceError(EdgekitError):
    """The interpreter failed while running the model."""


class RemoteError(EdgekitError):
    """A remote device (SSH host, adb phone) could not be reached or used."""


class CheckFailed(EdgekitError):
    """A check or budget failed: the input was fine, the model did not pass."""

    exit_code = 1


class OutOfDistributionError(InputValidationError):
    """Input the guard flagged as unlike the calibration data, under a policy that raises for it."""


class LatencyBudgetError(InferenceError):
    """A guarded call took longer than the policy's latency budget, under a policy that raises for it."""


class SignatureError(TamperedModelError):
    """A model refused by its signature: unsigned, signed by an untrusted key, or changed after signing.

    Exit code 2, like every TamperedModelError: the model handed in is not one to use (bad input),
    not a model that ran and missed a budget (exit 1).
    """


class StoreError(EdgekitError):
    """A device model store that cannot be used: unreadable, read-only, full, or with no valid version."""
