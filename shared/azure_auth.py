"""Passwordless connections: Entra ID access tokens instead of database and Redis passwords.

In Azure the app's managed identity signs in (``DefaultAzureCredential`` picks it up from the
App Service environment); from a release runner it is the ``az login`` identity. Tokens are
cached by azure-identity until shortly before they expire, so a new pooled connection does not
cost a token request.

- PostgreSQL (``DB_ENTRA_AUTH=true``): every new connection presents a fresh token as its
  password; the user in ``DATABASE_URL`` is the identity's database role name.
- Redis (``REDIS_ENTRA_AUTH=true``): redis-entraid's credential provider authenticates as the
  identity's object id and re-authenticates open connections when it refreshes the token.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from shared.config import Settings

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from redis.credentials import CredentialProvider
    from sqlalchemy import Engine

POSTGRES_SCOPE = "https://ossrdbms-aad.database.windows.net/.default"
REDIS_SCOPE = "https://redis.azure.com/.default"


def _credential_options(settings: Settings) -> dict[str, Any]:
    # AZURE_CLIENT_ID names this API's app registration here, but DefaultAzureCredential would
    # read it as a user-assigned identity's id: pass the identity explicitly (None means the
    # system-assigned identity).
    return {"managed_identity_client_id": settings.azure_managed_identity_client_id}


@functools.cache
def _credential(managed_identity_client_id: str | None) -> TokenCredential:
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(managed_identity_client_id=managed_identity_client_id)


def postgres_password(settings: Settings) -> str:
    identity = settings.azure_managed_identity_client_id
    return _credential(identity).get_token(POSTGRES_SCOPE).token


def use_entra_password(engine: Engine, settings: Settings) -> None:
    """Give every new connection of ``engine`` a current token as its password."""
    from sqlalchemy import event

    def provide_token(_dialect: Any, _record: Any, _args: Any, params: dict[str, Any]) -> None:
        params["password"] = postgres_password(settings)

    event.listen(engine, "do_connect", provide_token)


def redis_credential_provider(settings: Settings) -> CredentialProvider:
    from redis_entraid.cred_provider import create_from_default_azure_credential

    provider: CredentialProvider = create_from_default_azure_credential(
        scopes=(REDIS_SCOPE,), app_kwargs=_credential_options(settings)
    )
    return provider
