"""One exception hierarchy for ems. Everything ems raises on purpose is an ``EmsError``::

EmsError
├── ConfigError                bad settings or environment (exit 2 at start-up)
│   └── SiteFileError          a site file with problems; ``problems`` lists every one
├── Outcome                    an answer, not a breakdown: retrying the same call gives the same answer
│   ├── InvalidInput           a request or file that does not validate; ``problems`` per field
│   ├── NotFound               no such record
│   ├── Conflict               the record exists already, a unique key is taken, or it is still referred to
│   ├── BillingError           a money operation was refused
│   │   ├── InsufficientFunds    the balance does not cover it
│   │   └── IdempotencyConflict  an Idempotency-Key reused with a different request
│   └── NotAvailable           a feature that is not built (yet) or not configured
└── Failure                    infrastructure broke: the same call may succeed later
    ├── StorageError           the database failed
    │   └── StorageUnavailable cannot reach / open the database (retry later)
    └── StationError           talking to a charging station failed
        └── StationOffline     the station is not connected

A retry loop catches ``Failure`` (or ``StorageError``) only: outcomes pass through it untouched.
"""

from __future__ import annotations

from collections.abc import Sequence


class EmsError(Exception):
    """Base of every error ems raises on purpose."""


class ConfigError(EmsError):
    pass


class Outcome(EmsError):
    """The operation was refused for a reason in the request or the data; nothing is broken."""


class Failure(EmsError):
    """An infrastructure failure (database, station link); the same call may succeed later."""


class _WithProblems(EmsError):
    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        self.problems = list(problems)
        detail = "".join(f"\n  - {p}" for p in self.problems)
        super().__init__(f"{message}{detail}")


class SiteFileError(_WithProblems, ConfigError):
    pass


class InvalidInput(_WithProblems, Outcome):
    pass


class StorageError(Failure):
    pass


class StorageUnavailable(StorageError):
    pass


class NotFound(Outcome):
    pass


class Conflict(Outcome):
    pass


class StationError(Failure):
    pass


class StationOffline(StationError):
    pass


class BillingError(Outcome):
    pass


class InsufficientFunds(BillingError):
    pass


class IdempotencyConflict(BillingError):
    pass


class NotAvailable(Outcome):
    pass
