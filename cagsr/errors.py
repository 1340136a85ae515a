"""Errors a user can fix. The CLI prints them as one line on stderr and exits with code 2."""


class CagsrError(Exception):
    """Base class: the message alone must tell the user what to fix (file, line, key)."""


class ConfigError(CagsrError):
    """A bad config file, key, value or CLI argument."""


class DataError(CagsrError):
    """A bad data file: names the file, line and field."""


class ModelError(CagsrError):
    """A model that cannot be found or loaded."""
