"""One exception base for the client side, with stable string codes.

Codes are part of the control protocol (docs/control-protocol.md): they travel in error
replies and map to CLI exit codes (docs/cli.md). Group by what the caller can do.
"""

from __future__ import annotations

# CLI exit codes (docs/cli.md).
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_DAEMON_UNAVAILABLE = 3
EXIT_REJECTED = 4
EXIT_UPLOAD_FAILED = 5


class TelemetryError(Exception):
    """Base of every error a user or a protocol peer may see."""

    code = "internal_error"
    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, hint: str | None = None, details: object = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details

    def to_wire(self) -> dict:
        body: dict = {"code": self.code, "message": self.message}
        if self.hint:
            body["hint"] = self.hint
        if self.details is not None:
            body["details"] = self.details
        return body


class UsageError(TelemetryError):
    code = "bad_arguments"
    exit_code = EXIT_USAGE


class UnknownCommandError(UsageError):
    code = "unknown_command"


class MalformedRequestError(UsageError):
    code = "malformed_request"


class TooLargeError(UsageError):
    """A request or line past a size limit; `details` names the limit and the size."""

    code = "too_large"


class ConfigError(TelemetryError):
    code = "config_invalid"
    exit_code = EXIT_USAGE


class DaemonUnavailableError(TelemetryError):
    code = "daemon_unavailable"
    exit_code = EXIT_DAEMON_UNAVAILABLE


class InsecureSocketDirError(DaemonUnavailableError):
    """The socket folder is not this user's private folder (another user's, a
    symlink, or open to others): no client connects there, no daemon starts there."""

    code = "insecure_socket_dir"


class ValidationRejectedError(TelemetryError):
    code = "validation_failed"
    exit_code = EXIT_REJECTED


class PrivacyViolationError(ValidationRejectedError):
    code = "privacy_violation"


class PackageChangedError(ValidationRejectedError):
    code = "package_changed"


class NotReviewedError(ValidationRejectedError):
    """`upload --file` of content this machine did not export and the user did not confirm
    (`--reviewed`, after a `preview` of exactly that content)."""

    code = "not_reviewed"


class NotAPackageError(ValidationRejectedError):
    """A file given as a package that is not one at all (not JSON, not a package object)."""

    code = "not_a_package"


class CatalogInvalidError(TelemetryError):
    """A catalog file that cannot be used: a configuration problem (exit 2)."""

    code = "catalog_invalid"
    exit_code = EXIT_USAGE


class EventTooLargeError(TelemetryError):
    """One event that does not fit in a package of the configured upload size, even alone."""

    code = "event_too_large"


class ServiceInstallError(TelemetryError):
    """A unit could not be written, or systemctl could not take it (exit 1)."""

    code = "service_install_failed"


class ListenError(TelemetryError):
    """The backend could not listen on its address (port in use, not allowed, not ours)."""

    code = "cannot_listen"


class UploadFailedError(TelemetryError):
    code = "upload_failed"
    exit_code = EXIT_UPLOAD_FAILED


class ConsentWithdrawnError(TelemetryError):
    code = "consent_withdrawn"
    exit_code = EXIT_FAILED


class NotFoundError(TelemetryError):
    code = "not_found"
    exit_code = EXIT_FAILED


class StorageError(TelemetryError):
    """Local disk trouble (full disk, read-only folder, permissions)."""

    code = "storage_error"
    exit_code = EXIT_FAILED




def _error_classes() -> tuple[type[TelemetryError], ...]:
    """TelemetryError and every class below it, as defined above (this module imports nothing,
    so nothing else is defined yet): the one table of the codes a reply may carry."""
    found, pending = [TelemetryError], [TelemetryError]
    while pending:
        for sub in pending.pop(0).__subclasses__():
            found.append(sub)
            pending.append(sub)
    return tuple(found)


# Every error class a reply may name by its code (ipc turns a reply back into its class). Every
# TelemetryError subclass is defined in this module (a test checks the whole package).
ERROR_CLASSES: tuple[type[TelemetryError], ...] = _error_classes()
# Every code a reply may carry -> the exit code the CLI uses for it.
EXIT_CODE_BY_ERROR_CODE: dict[str, int] = {cls.code: cls.exit_code for cls in ERROR_CLASSES}
