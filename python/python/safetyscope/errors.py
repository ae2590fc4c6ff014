"""Exception hierarchy of safetyscope.

Every error raised by the library derives from :class:`SafetyscopeError`.
Where Python users expect a built-in exception, the classes also derive from
it: a missing file is a :class:`FileNotFoundError`, bad values are
:class:`ValueError` s.
"""

from __future__ import annotations


class SafetyscopeError(Exception):
    """Base class of every safetyscope error."""


class SchemaError(SafetyscopeError, ValueError):
    """A table lacks the columns or types the canonical model needs."""


class DataError(SafetyscopeError, ValueError):
    """Values make a table unusable (single bad rows are counted instead)."""


class MappingError(SafetyscopeError, ValueError):
    """A mapping file is invalid; the message names the place in it."""


class OptionError(SafetyscopeError, ValueError):
    """An option passed to an analysis is invalid."""


class QueryError(SafetyscopeError):
    """A SQL query or a query plan failed."""


class SafetyscopeIOError(SafetyscopeError, OSError):
    """A file could not be read or written."""


class NotFoundError(SafetyscopeIOError, FileNotFoundError):
    """A path named by the user does not exist."""


__all__ = [
    "SafetyscopeError",
    "SchemaError",
    "DataError",
    "MappingError",
    "OptionError",
    "QueryError",
    "SafetyscopeIOError",
    "NotFoundError",
]
