"""AWS error text: the code and a printable reason of a failed call, and the code families the scanner tells apart."""

from __future__ import annotations

from botocore.exceptions import ClientError

# Error codes botocore's adaptive mode treats as throttling (botocore.retries.standard).
THROTTLING_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "ProvisionedThroughputExceededException", "TransactionInProgressException",
    "RequestLimitExceeded", "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled",
    "SlowDown", "PriorRequestNotComplete", "EC2ThrottledException",
})
# Error codes that mean "you may not read this": they become gaps, never passes.
DENIED_CODES = frozenset({
    "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError",
    "UnauthorizedAccess", "AllAccessDisabled", "Forbidden", "403",
})


def error_code(exc: ClientError) -> str:
    """The AWS error code of a ClientError."""
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


def error_message(exc: BaseException) -> str:
    """A one-line reason safe to print: the AWS code and message, never credentials."""
    if isinstance(exc, ClientError):
        msg = str(exc.response.get("Error", {}).get("Message", ""))
        return f"{error_code(exc)}: {msg}"[:400] if msg else error_code(exc)
    return f"{type(exc).__name__}: {exc}"[:400]
