"""The one FunctionApp: registers every blueprint, and nothing else.

Importing this module does no network I/O and loads no heavy library; blueprints import
SQLAlchemy, pydantic, the cache and telemetry on first use.
"""

import azure.functions as func

from blueprints import cache_admin, docs, health, items, login, maintenance, users, utils
from shared.config import get_settings

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

for blueprint in (
    health.bp,
    login.bp,
    users.bp,
    items.bp,
    utils.bp,
    cache_admin.bp,
    maintenance.bp,
    docs.bp,
):
    app.register_functions(blueprint)

# The frontend's end-to-end tests create users through this route; it exists in development only,
# and is imported only then, so that no other environment's OpenAPI document lists it.
if get_settings().environment == "development":
    from blueprints import private

    app.register_functions(private.bp)
