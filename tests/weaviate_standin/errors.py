"""Errors carry the HTTP status Weaviate answers with; over gRPC they become plain Go errors
(status UNKNOWN with the message), which is what Weaviate's handlers return too."""

from __future__ import annotations


class StandinError(Exception):
    """A request Weaviate would refuse; `status` is the REST answer."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Unprocessable(StandinError):
    status = 422


class NotFound(StandinError):
    status = 404


class BadRequest(StandinError):
    status = 400


class Unauthorized(StandinError):
    status = 401
