"""A loopback stand-in for an Entra ID tenant's key endpoint, and tokens signed with its keys.

The app validates these tokens with its production code: only the authority host differs
(``AZURE_AUTHORITY_HOST``), which is what lets tests serve the JWKS themselves.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.support.loopback_http import LoopbackHttpServer


class Tenant(LoopbackHttpServer):
    def __init__(self) -> None:
        self.tenant_id = str(uuid.uuid4())
        self.client_id = str(uuid.uuid4())
        self._keys: dict[str, rsa.RSAPrivateKey] = {}
        self.published: list[str] = []
        self.fetches = 0
        # While set, the key endpoint accepts requests and answers none (a hung endpoint).
        self.hung = threading.Event()
        self._released = threading.Event()
        self.add_key(publish=True)
        tenant = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != f"/{tenant.tenant_id}/discovery/v2.0/keys":
                    self.send_error(404)
                    return
                tenant.fetches += 1
                if tenant.hung.is_set():
                    tenant._released.wait(30)
                    return
                body = json.dumps(tenant.jwks()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        super().__init__(Handler)
        self.authority = f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._released.set()  # a hung key request ends, or shutdown would wait for it
        super().close()

    def hang(self) -> None:
        self._released.clear()
        self.hung.set()

    def recover(self) -> None:
        self.hung.clear()
        self._released.set()

    def add_key(self, publish: bool) -> str:
        kid = uuid.uuid4().hex
        self._keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if publish:
            self.published.append(kid)
        return kid

    def publish(self, kid: str) -> None:
        self.published.append(kid)

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid in self.published:
            jwk = RSAAlgorithm.to_jwk(self._keys[kid].public_key(), as_dict=True)
            keys.append({**jwk, "kid": kid, "use": "sig", "kty": "RSA"})
        return {"keys": keys}

    def app_settings(self, admin_role: str, cooldown: float | None = None) -> dict[str, str]:
        """The app's settings that accept this tenant's tokens."""
        settings = {
            "AZURE_TENANT_ID": self.tenant_id,
            "AZURE_CLIENT_ID": self.client_id,
            "AZURE_ADMIN_ROLE": admin_role,
            "AZURE_AUTHORITY_HOST": self.authority,
        }
        if cooldown is not None:
            settings["AZURE_JWKS_COOLDOWN_SECONDS"] = str(cooldown)
        return settings

    @property
    def v2_issuer(self) -> str:
        return f"{self.authority}/{self.tenant_id}/v2.0"

    @property
    def v1_issuer(self) -> str:
        return f"https://sts.windows.net/{self.tenant_id}/"

    def token(self, kid: str | None = None, **overrides: Any) -> str:
        kid = kid or self.published[0]
        now = int(time.time())
        claims: dict[str, Any] = {
            "aud": self.client_id,
            "iss": self.v2_issuer,
            "iat": now,
            "nbf": now,
            "exp": now + 600,
            "oid": str(uuid.uuid4()),
            "tid": self.tenant_id,
            "sub": uuid.uuid4().hex,
            "preferred_username": f"entra-{uuid.uuid4().hex[:8]}@contoso.example.com",
            "name": "Entra User",
        }
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(claims, self._keys[kid], algorithm="RS256", headers={"kid": kid})
