"""Every failure a client can act on, as one exception type each, mapped in one place to OpenAI's body.

OpenAI's SDKs read `error.message`, `error.type`, `error.param` and `error.code`, and pick their
exception class from the HTTP status; matching both is what makes a gateway transparent to them.
"""

from __future__ import annotations

import orjson


class GatewayError(Exception):
    """Base: a status, an OpenAI error type and code, a message safe to show the client."""

    status = 500
    type = "api_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers = headers or {}

    def body(self) -> bytes:
        return error_body(self.message, self.type, self.code, self.param)


def error_body(message: str, type_: str, code: str | None = None, param: str | None = None) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": type_, "param": param, "code": code}})


class BadRequest(GatewayError):
    status = 400
    type = "invalid_request_error"


class InvalidJSON(BadRequest):
    code = "invalid_json"


class InvalidPath(BadRequest):
    """A path another hop could read differently (dot-segments, backslashes, ...): never routed."""

    code = "invalid_path"


class RequestTimeout(GatewayError):
    """The client was too slow sending its request body."""

    status = 408
    type = "invalid_request_error"
    code = "request_timeout"


class BodyTooLarge(GatewayError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


class Unauthorized(GatewayError):
    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class Forbidden(GatewayError):
    status = 403
    type = "permission_error"


class CorsRefused(Forbidden):
    code = "cors_origin_not_allowed"


class ModelNotFound(GatewayError):
    status = 404
    type = "invalid_request_error"
    code = "model_not_found"


class NotFound(GatewayError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


class MethodNotAllowed(GatewayError):
    status = 405
    type = "invalid_request_error"
    code = "method_not_allowed"


class RateLimited(GatewayError):
    status = 429
    type = "rate_limit_error"  # the type OpenAI's own 429s carry
    code = "rate_limit_exceeded"


class QuotaExceeded(GatewayError):
    status = 429
    type = "insufficient_quota"
    code = "insufficient_quota"


class UpstreamUnavailable(GatewayError):
    """No upstream could be reached (refused, reset, DNS, all channels cooling down)."""

    status = 502
    type = "api_error"
    code = "upstream_unavailable"


class UpstreamNotConfigured(GatewayError):
    status = 503
    type = "api_error"
    code = "upstream_not_configured"


class ServiceUnavailable(GatewayError):
    status = 503
    type = "api_error"
    code = "service_unavailable"


class UpstreamTimeout(GatewayError):
    status = 504
    type = "timeout_error"
    code = "upstream_timeout"


class UpstreamBadResponse(GatewayError):
    status = 502
    type = "api_error"
    code = "bad_upstream_response"
