"""Error bodies in the words of the service a path belongs to, for answers no handler wrote."""

from __future__ import annotations

from typing import Any

__all__ = ["service_error"]


def service_error(status: int, path: str, message: str) -> dict[str, Any]:
    """DDI `{"status","errorString"}`, OIDC `{"error","error_description"}`, else HEAppE ProblemDetails."""
    if path.startswith(("/staging", "/dataset")):
        return {"status": str(status), "errorString": message}
    if path.startswith("/auth"):
        return {"error": "temporarily_unavailable" if status >= 500 else "invalid_request", "error_description": message}
    return {"title": message, "detail": message, "status": status}
