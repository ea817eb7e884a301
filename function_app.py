"""The one FunctionApp: registers every blueprint, and nothing else.

Importing this module does no network I/O and loads no heavy library; blueprints import
SQLAlchemy, pydantic, the cache and telemetry on first use.
"""

import azure.functions as func

from blueprints import health

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
app.register_functions(health.bp)
