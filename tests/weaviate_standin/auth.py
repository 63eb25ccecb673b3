"""API-key auth as Weaviate 1.32 does it (composer/token_validation.go, anonymous/middleware.go,
grpc/v1/auth.go): keys from AUTHENTICATION_APIKEY_ALLOWED_KEYS, anonymous access on or off,
and a bearer token sent to an instance without API keys refused."""

from __future__ import annotations

import grpc

NO_SCHEME = ("no authentication scheme is configured (API Key or OIDC), but an 'Authorization' "
             "header was provided. Please configure an auth scheme or remove the header for "
             "anonymous access")


class Auth:
    def __init__(self, keys: list[str] | None = None, anonymous: bool | None = None) -> None:
        self.keys = [k for k in keys or [] if k]
        self.anonymous = (not self.keys) if anonymous is None else anonymous

    def refusal(self, header: str | None) -> str | None:
        """Why a REST request with this Authorization header is refused, or None."""
        token = header[len("Bearer "):] if header and header.startswith("Bearer ") else None
        if token is not None:
            if not self.keys:
                return NO_SCHEME
            return None if token in self.keys else "unauthorized: invalid api key"
        if self.anonymous:
            return None
        methods = "API-keys" if self.keys else ""
        return ("anonymous access not enabled. Please authenticate through one of the "
                f"available methods: [{methods}]")

    def check_grpc(self, context: grpc.ServicerContext) -> None:
        header = dict(context.invocation_metadata()).get("authorization")
        bearer = header if header and header.startswith("Bearer ") else None
        if bearer is None and self.anonymous:
            return
        reason = self.refusal(bearer or "Bearer ")  # tryAnonymous: the composer with ""
        if reason is not None:
            context.abort(grpc.StatusCode.UNKNOWN, f"extract auth: {reason}")
