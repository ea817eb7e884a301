"""App Service's managed identity endpoint on loopback (``IDENTITY_ENDPOINT``/``IDENTITY_HEADER``).

azure-identity's ``DefaultAzureCredential`` finds it exactly as it does in a Function App, so the
app's passwordless paths run their production code up to, and including, the token call.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any

import jwt

from tests.support.loopback_http import LoopbackHttpServer


def access_token(audience: str, object_id: str, lifetime: int = 3600) -> str:
    """A JWT shaped like an Entra ID access token (redis-entraid reads ``oid`` and ``exp``)."""
    now = int(time.time())
    claims = {"aud": audience, "oid": object_id, "iat": now, "nbf": now, "exp": now + lifetime}
    return jwt.encode(claims, "not-a-real-signing-key-" + "x" * 32, algorithm="HS256")


class ManagedIdentityEndpoint(LoopbackHttpServer):
    def __init__(self, tokens: dict[str, str]) -> None:
        """``tokens`` maps a resource (scope without ``/.default``) to the token to hand out."""
        self.tokens = tokens
        self.secret = uuid.uuid4().hex
        self.requests: list[dict[str, str]] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
                endpoint.requests.append(query)
                token = endpoint.tokens.get(query.get("resource", ""))
                if self.headers.get("X-IDENTITY-HEADER") != endpoint.secret or token is None:
                    self.send_error(400)
                    return
                body = json.dumps(
                    {
                        "access_token": token,
                        "expires_on": str(int(time.time()) + 3600),
                        "resource": query["resource"],
                        "token_type": "Bearer",
                        "client_id": str(uuid.uuid4()),
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        super().__init__(Handler)

    @property
    def env(self) -> dict[str, str]:
        port = self.port
        return {
            "IDENTITY_ENDPOINT": f"http://127.0.0.1:{port}/msi/token",
            "IDENTITY_HEADER": self.secret,
        }
