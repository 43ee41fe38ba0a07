"""Exceptions raised by granary: one class per error code of the server and client.

Every failure of a granary call raises a subclass of :class:`Error`. Its ``code`` is the stable
lower-case name of the code (``"not_found"``, ``"no_such_bucket"``, ...; see
``include/granary/status.h``) and its ``message`` says what happened and what to do about it.

``CLASSES_BY_CODE`` is the one mapping from code to class. The compiled module checks at import
that it names every code the C++ library knows, so a code added there without a class here fails
loudly instead of degrading to the base class.

Some classes also derive from the built-in exception a Python caller would expect:
:class:`UnavailableError` is a :class:`ConnectionError`, :class:`InvalidArgumentError` a
:class:`ValueError`, :class:`PermissionDeniedError` a :class:`PermissionError`.

Batch calls (``Client.put_many``, ``get_many``, ``get_many_into``, ``delete_many``, and
``granary.kv.KVStore.batch_put`` and ``batch_get_into``) raise the class of their first failed
item, with two extra attributes: ``results``, the outcome of every item in order (its value, or an
:class:`Error` instance where it failed), and ``failures``, a list of ``(key, error)`` pairs for the
failed items only (a KVStore call gives each key as the caller passed it, bytes or str).
"""

__all__ = [
    "Error", "NotFoundError", "InvalidArgumentError", "CorruptionError", "StorageIOError",
    "NoSpaceError", "UnavailableError", "NotSupportedError", "AlreadyExistsError",
    "InternalError", "PreconditionFailedError", "NotModifiedError", "UnauthenticatedError",
    "PermissionDeniedError", "NoSuchBucketError", "NoSuchUploadError", "BucketNotEmptyError",
    "InvalidRangeError", "BadDigestError", "InvalidPartError", "EntityTooSmallError",
    "NoSuchPoolError",
    "StaleMapError",
    "CLASSES_BY_CODE",
]


class Error(Exception):
    """Base class of every error granary raises.

    Attributes:
        code: the error code's stable name, e.g. ``"not_found"``.
        message: what happened, and what to do about it.
        results, failures: only on errors raised by batch calls (see the module docstring).
    """

    code = "unknown"

    def __init__(self, message="", code=None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __reduce__(self):
        # Keeps code and message across pickling (multiprocessing workers, DataLoader).
        return (type(self), (self.message, self.code), self._extra_state())

    def _extra_state(self):
        state = dict(self.__dict__)
        state.pop("message", None)
        state.pop("code", None)
        return state or None


class NotFoundError(Error):
    """The object (key) does not exist."""
    code = "not_found"


class InvalidArgumentError(Error, ValueError):
    """The request is malformed (a bad name, range or option); retrying will not help."""
    code = "invalid_argument"


class CorruptionError(Error):
    """Stored bytes failed their checksum; the data is never returned."""
    code = "corruption"


class StorageIOError(Error):
    """The server's operating system failed an I/O call."""
    code = "io_error"


class NoSpaceError(Error):
    """A disk or a quota is full."""
    code = "no_space"


class UnavailableError(Error, ConnectionError):
    """The server cannot be reached, is shutting down, or the request timed out.

    Retry later or elsewhere; a client reconnects on its own once the server is back.
    """
    code = "unavailable"


class NotSupportedError(Error):
    """The operation or format is not supported by this server."""
    code = "not_supported"


class AlreadyExistsError(Error):
    """Something that must be new already exists (e.g. a bucket)."""
    code = "already_exists"


class InternalError(Error):
    """A bug in granary: an invariant did not hold. Please report it."""
    code = "internal"


class PreconditionFailedError(Error):
    """A condition (if_match, if_none_match, if_version) did not hold."""
    code = "precondition_failed"


class NotModifiedError(Error):
    """A read's if_none_match says the caller already has the current object."""
    code = "not_modified"


class UnauthenticatedError(Error):
    """The access key is unknown or the secret key is wrong."""
    code = "unauthenticated"


class PermissionDeniedError(Error, PermissionError):
    """Authenticated, but not allowed to do this."""
    code = "permission_denied"


class NoSuchBucketError(Error):
    """The bucket does not exist."""
    code = "no_such_bucket"


class NoSuchUploadError(Error):
    """The multipart upload does not exist (it was completed or aborted)."""
    code = "no_such_upload"


class BucketNotEmptyError(Error):
    """A bucket must be empty to be deleted."""
    code = "bucket_not_empty"


class InvalidRangeError(Error):
    """The requested byte range starts past the object's end."""
    code = "invalid_range"


class BadDigestError(Error):
    """The bytes do not match the checksum sent with them."""
    code = "bad_digest"


class InvalidPartError(Error):
    """A multipart completion names a part that is missing or whose ETag does not match."""
    code = "invalid_part"


class EntityTooSmallError(Error):
    """A multipart part other than the last is below the minimum size (5 MiB)."""
    code = "entity_too_small"


class NoSuchPoolError(Error):
    """The KV-cache pool does not exist: it was never created, or it was deleted."""
    code = "no_such_pool"


class StaleMapError(UnavailableError):
    """The cluster map a request was routed by is out of date; the client refreshes and retries."""
    code = "stale_map"


CLASSES_BY_CODE = {cls.code: cls for cls in (
    NotFoundError, InvalidArgumentError, CorruptionError, StorageIOError, NoSpaceError,
    UnavailableError, NotSupportedError, AlreadyExistsError, InternalError,
    PreconditionFailedError, NotModifiedError, UnauthenticatedError, PermissionDeniedError,
    NoSuchBucketError, NoSuchUploadError, BucketNotEmptyError, InvalidRangeError, BadDigestError,
    InvalidPartError, EntityTooSmallError, NoSuchPoolError, StaleMapError,
)}

# Shown as granary.NotFoundError (the package re-exports every class), not granary.errors.X.
for _cls in (Error, *CLASSES_BY_CODE.values()):
    _cls.__module__ = "granary"
del _cls
