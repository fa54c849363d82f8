"""Security headers on every response, and CORS for the configured origins only."""

from __future__ import annotations

from flask import Flask, Response, request

# JSON needs no sources; the docs blueprint sets its own policy for the ReDoc page.
API_CSP = "default-src 'none'; frame-ancestors 'none'"
CORS_ALLOW_HEADERS = "Authorization, Content-Type, X-Version, X-Request-ID, If-Match, If-None-Match"
CORS_EXPOSE_HEADERS = "X-Request-ID, Retry-After, WWW-Authenticate, ETag, Link, Deprecation, Sunset"


SECURITY_HEADERS = [
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
]


def security_headers(response: Response) -> Response:
    headers = response.headers
    headers.extend(SECURITY_HEADERS)
    if "Content-Security-Policy" not in headers:  # the docs set their own
        headers["Content-Security-Policy"] = API_CSP
    return response


def no_store(response: Response) -> Response:
    """For responses that carry tokens or account data: no cache may keep them."""
    response.headers["Cache-Control"] = "no-store"
    return response


def cors_for(origins: set[str]):
    """An after_request hook allowing exactly ``origins`` ("*": any) to read responses."""

    def cors(response: Response) -> Response:
        # Every answer varies by Origin, so a shared cache never serves one origin's to another.
        response.vary.add("Origin")
        origin = request.headers.get("Origin")
        if not origin or not ({origin, "*"} & origins):
            return response
        response.headers["Access-Control-Allow-Origin"] = "*" if "*" in origins else origin
        response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSE_HEADERS
        if request.method == "OPTIONS":
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, PATCH, DELETE"
            response.headers["Access-Control-Allow-Headers"] = CORS_ALLOW_HEADERS
            response.headers["Access-Control-Max-Age"] = "600"
        return response

    return cors


def init_app(app: Flask) -> None:
    app.after_request(security_headers)
    origins = {origin.strip() for origin in app.config["CORS_ORIGINS"].split(",") if origin.strip()}
    if origins:
        app.after_request(cors_for(origins))
