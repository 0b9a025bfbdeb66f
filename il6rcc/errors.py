"""User-facing error types.

Every error a user can cause (bad config, data, PEtab file, model name, dose) is one
of these. The CLI prints the message and exits with status 2, without a traceback.
Messages name the file, row or key, the value received and what was expected.
"""


class Il6rccError(ValueError):
    """Base class of all errors caused by user input."""


class ModelSpecError(Il6rccError):
    """A model, variant, cell line, perturbation or solver name or value is invalid."""


class ConfigError(Il6rccError):
    """A config file is invalid."""


class DataError(Il6rccError):
    """An evidence table or digitisation file is invalid."""


class PetabError(Il6rccError):
    """A PEtab problem is invalid or uses an unsupported feature."""


def choices(valid) -> str:
    """Format a list of valid choices for an error message."""
    return ", ".join(repr(v) for v in sorted(valid))


__all__ = ["ConfigError", "DataError", "Il6rccError", "ModelSpecError", "PetabError", "choices"]
