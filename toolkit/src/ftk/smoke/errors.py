"""Sort a failed request into reasons users can act on: wrong model name, bad key, timeout, TLS, refused."""

from __future__ import annotations

import ssl

import httpx
import openai


def _chain(err: BaseException) -> list[BaseException]:
    out, seen = [], set()
    while err is not None and id(err) not in seen:
        out.append(err)
        seen.add(id(err))
        err = err.__cause__ or err.__context__  # type: ignore[assignment]
    return out


def classify(err: BaseException) -> tuple[str, str]:
    """(reason, advice) for an exception raised by the OpenAI SDK or httpx."""
    if isinstance(err, openai.NotFoundError):
        return (
            "404 wrong model name or path",
            "the server does not serve that model name: compare with `ftk lora list` or GET /v1/models",
        )
    if isinstance(err, openai.AuthenticationError):
        return (
            "401 bad API key",
            "the key is not accepted: check SMOKE_API_KEY_FILE / API_KEYS_FILE (active keys)",
        )
    if isinstance(err, openai.PermissionDeniedError):
        return "403 key revoked or forbidden", "use an active key from API_KEYS_FILE"
    if isinstance(err, openai.RateLimitError):
        return "429 rate limited", "slow down or raise RATE_LIMIT_RPS / RATE_LIMIT_BURST"
    if isinstance(err, openai.APITimeoutError):
        return "timeout", "no answer within SMOKE_TIMEOUT; is the server overloaded or still loading?"
    chain = _chain(err)
    if any(isinstance(e, ssl.SSLCertVerificationError) for e in chain) or any(
        "CERTIFICATE_VERIFY_FAILED" in str(e) or "certificate verify failed" in str(e) for e in chain
    ):
        return (
            "TLS verification error",
            "the server certificate is not signed by the CA given (--ca / TLS_CA) or its name does not match "
            "GATEWAY_SERVER_NAME",
        )
    if any(isinstance(e, (ConnectionRefusedError,)) or "Connection refused" in str(e) for e in chain):
        return (
            "connection refused",
            "nothing listens at the base URL: start the server/gateway or fix the URL",
        )
    if any(isinstance(e, httpx.TimeoutException) for e in chain):
        return "timeout", "no answer within SMOKE_TIMEOUT"
    if isinstance(err, openai.APIConnectionError):
        return "connection error", f"{chain[-1]}"
    if isinstance(err, openai.APIStatusError):
        return f"HTTP {err.status_code}", str(err)[:200]
    return type(err).__name__, str(err)[:200]
