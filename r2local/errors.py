"""Typed errors. Every subclass of R2Error is safe to show to a user as is.

Backends raise these instead of their library's exceptions so that callers
branch on types, never on message text.
"""

from __future__ import annotations

from r2local.vocab import Status


class R2Error(Exception):
    """Root of r2local's errors; ``fix`` names what the user should do."""

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.message}\n  fix: {self.fix}" if self.fix else self.message


class ConfigError(R2Error):
    """config.toml or a model manifest is invalid."""


class ModelError(R2Error):
    """A model is unknown, missing, corrupt or cannot be fetched."""


class KeyringUnavailable(R2Error):
    """The OS offers no usable keyring backend."""


class MissingKey(R2Error):
    """A cloud tier has no API key."""


class BackendError(R2Error):
    """A model call failed. ``retryable`` says whether trying again may help."""

    retryable = False


class ContextOverflow(BackendError):
    """The prompt does not fit the model's context window."""


class CloudError(BackendError):
    """A call to an OpenAI-compatible endpoint failed."""


class CloudTimeout(CloudError):
    retryable = True


class RateLimited(CloudError):
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, fix: str | None = None):
        super().__init__(message, fix=fix)
        self.retry_after = retry_after


class ServerError(CloudError):
    retryable = True


class ConnectionFailed(CloudError):
    retryable = True


class StreamCut(CloudError):
    """The stream ended before the server said it was finished."""

    retryable = True


class AuthFailed(CloudError):
    """The endpoint rejected the key."""


class BadRequest(CloudError):
    """The endpoint rejected the request itself."""


class CloudRefused(R2Error):
    """A gate kept a call off the cloud; the subtask runs on the strongest local
    tier instead, its status set to ``mark``."""

    mark = Status.KEPT_LOCAL


class PrivacyRefused(CloudRefused):
    """Privacy mode (local-only, or confirm declined / nobody to ask) kept it local."""

    mark = Status.KEPT_LOCAL


class BudgetExceeded(CloudRefused):
    """A cloud call would overshoot the daily or monthly budget."""

    mark = Status.BUDGET


class Cancelled(R2Error):
    """The user cancelled the question."""


class PlaintextRefused(KeyringUnavailable):
    """The keyring backend would store the key in plaintext and the user did not accept that."""


class SandboxError(R2Error):
    """The program sandbox itself cannot work (never raised for a bad program: that is a status)."""


class SandboxUnavailable(SandboxError):
    """The sandbox's worker process could not be started."""


class SandboxClosed(SandboxError):
    """A program was run after the sandbox was closed."""


class AdapterError(ModelError):
    """A LoRA adapter cannot be converted, or does not fit the base model it is meant for."""


class TrainError(R2Error):
    """Training data or settings cannot be used as given."""
