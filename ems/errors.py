"""One exception hierarchy for ems. Everything ems raises on purpose is an ``EmsError``::

EmsError
├── ConfigError              bad settings or environment (exit 2 at start-up)
│   └── SiteFileError        a site file with problems; ``problems`` lists every one
├── InvalidInput             a request or file that does not validate; ``problems`` per field
├── StorageError             the database failed
│   ├── StorageUnavailable   cannot reach / open the database (retry later)
│   ├── NotFound             no such record
│   └── Conflict             the record exists already, or a unique key is taken
├── StationError             talking to a charging station failed
│   └── StationOffline       the station is not connected
├── BillingError             a money operation was refused
│   ├── InsufficientFunds    the balance does not cover it
│   └── IdempotencyConflict  an Idempotency-Key reused with a different request
└── NotAvailable             a feature that is not built (yet) or not configured
"""

from __future__ import annotations

from collections.abc import Sequence


class EmsError(Exception):
    """Base of every error ems raises on purpose."""


class ConfigError(EmsError):
    pass


class _WithProblems(EmsError):
    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        self.problems = list(problems)
        detail = "".join(f"\n  - {p}" for p in self.problems)
        super().__init__(f"{message}{detail}")


class SiteFileError(_WithProblems, ConfigError):
    pass


class InvalidInput(_WithProblems):
    pass


class StorageError(EmsError):
    pass


class StorageUnavailable(StorageError):
    pass


class NotFound(StorageError):
    pass


class Conflict(StorageError):
    pass


class StationError(EmsError):
    pass


class StationOffline(StationError):
    pass


class BillingError(EmsError):
    pass


class InsufficientFunds(BillingError):
    pass


class IdempotencyConflict(BillingError):
    pass


class NotAvailable(EmsError):
    pass
