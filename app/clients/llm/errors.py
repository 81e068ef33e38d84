"""Sentinel's own LLM error types; provider clients translate SDK errors into these."""

from __future__ import annotations


class LLMError(Exception):
    """Base of every provider failure."""

    outcome = "error"

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class TransientLLMError(LLMError):
    """5xx, timeout, connection error or a short rate limit: retrying the same model may work."""

    outcome = "transient_error"

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class QuotaExhausted(LLMError):
    """The model's quota is spent (per day, or billing): no retry until `retry_after`."""

    outcome = "quota_exhausted"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = 429,
        retry_after: float | None = None,
        quota_id: str | None = None,
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after
        self.quota_id = quota_id


class AuthFailed(LLMError):
    """The key is missing, wrong or not allowed this model: the model stays disabled."""

    outcome = "auth_error"


class BadRequest(LLMError):
    """The provider rejected the request itself: retrying the same request cannot help."""

    outcome = "bad_request"
