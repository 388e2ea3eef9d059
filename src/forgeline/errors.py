"""One root error, a small tree of subclasses, each with a stable code.

The code decides the HTTP status (serving) and the exit code (CLI) in one table,
``STATUS``, so a new error class never needs changes anywhere else.
"""

from __future__ import annotations

__all__ = [
    "STATUS",
    "AlreadyExists",
    "Conflict",
    "Forbidden",
    "ForgelineError",
    "IntegrityError",
    "InvalidInput",
    "InvalidSpec",
    "LeakageDetected",
    "NotExplainable",
    "NotFound",
    "PersonalDataFound",
    "StoreError",
    "Unauthorized",
    "UpstreamError",
    "UpstreamTimeout",
]


class ForgelineError(Exception):
    """Root of every error Forgeline raises on purpose.

    The message says what was wrong and, where it can, what to do about it.
    """

    code = "FORGELINE_ERROR"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message} {hint}" if hint else message)


class InvalidInput(ForgelineError):
    """A value given by the user is malformed or out of range."""

    code = "INVALID_INPUT"


class InvalidSpec(InvalidInput):
    """A pipeline or configuration spec does not validate."""

    code = "INVALID_SPEC"


class NotExplainable(InvalidInput):
    """A model whose predictions Forgeline cannot explain (an estimator it has no method for)."""

    code = "NOT_EXPLAINABLE"


class NotFound(ForgelineError):
    """The named object does not exist."""

    code = "NOT_FOUND"


class AlreadyExists(ForgelineError):
    """An object with that name or id exists already."""

    code = "ALREADY_EXISTS"


class Conflict(ForgelineError):
    """The request is valid but the current state forbids it (e.g. deleting an aliased version)."""

    code = "CONFLICT"


class LeakageDetected(ForgelineError):
    """A leakage check failed under a ``fail`` policy."""

    code = "LEAKAGE_DETECTED"


class PersonalDataFound(ForgelineError):
    """Personal data where the spec's privacy policy is ``fail``."""

    code = "PERSONAL_DATA"


class IntegrityError(ForgelineError):
    """Stored bytes no longer match their recorded hash."""

    code = "INTEGRITY_ERROR"


class StoreError(ForgelineError):
    """The store cannot be reached or used (driver, connection, corrupt file)."""

    code = "STORE_ERROR"


class Unauthorized(ForgelineError):
    """A request to a team server without a valid token."""

    code = "UNAUTHORIZED"


class Forbidden(ForgelineError):
    """A valid token whose role does not allow the request (the message names the role)."""

    code = "FORBIDDEN"


class UpstreamError(ForgelineError):
    """An outside service Forgeline calls (an LLM endpoint) cannot be reached or fails."""

    code = "UPSTREAM_ERROR"


class UpstreamTimeout(UpstreamError):
    """An outside service Forgeline calls (an LLM endpoint) did not answer in time."""

    code = "UPSTREAM_TIMEOUT"


# code -> (HTTP status, CLI exit code)
STATUS: dict[str, tuple[int, int]] = {
    ForgelineError.code: (500, 1),
    InvalidInput.code: (400, 2),
    InvalidSpec.code: (422, 2),
    NotExplainable.code: (422, 2),
    NotFound.code: (404, 3),
    AlreadyExists.code: (409, 4),
    Conflict.code: (409, 4),
    LeakageDetected.code: (422, 5),
    PersonalDataFound.code: (422, 5),
    IntegrityError.code: (500, 6),
    StoreError.code: (503, 7),
    Unauthorized.code: (401, 8),
    Forbidden.code: (403, 8),
    UpstreamError.code: (502, 9),
    UpstreamTimeout.code: (504, 9),
}


def http_status(error: ForgelineError) -> int:
    """The HTTP status an API answers for ``error``."""
    return STATUS.get(error.code, STATUS[ForgelineError.code])[0]


def exit_code(error: ForgelineError) -> int:
    """The process exit code the CLI uses for ``error``."""
    return STATUS.get(error.code, STATUS[ForgelineError.code])[1]
