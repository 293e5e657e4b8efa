"""The one error hierarchy of mixopt.

Messages say what went wrong, where (file, row, column or field path), the value seen and what
was expected. ``assert`` is never used for user input.
"""

from __future__ import annotations


class MixoptError(Exception):
    """Base class of every error mixopt raises on purpose."""


class ConfigError(MixoptError, ValueError):
    """A configuration value is missing, malformed or inconsistent."""


class MixtureError(MixoptError, ValueError):
    """A mixture is not a valid point of the simplex over the known domains."""


class DataError(MixoptError, ValueError):
    """Input data (corpus files, run tables, CSVs) is missing, malformed or inconsistent."""


class RunError(MixoptError, RuntimeError):
    """A proxy or target run could not be carried out."""
