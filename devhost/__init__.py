"""A local Azure Functions host for development and tests where Core Tools are unavailable.

``python -m devhost`` (or ``manage.py serve``, through ``devhost.server.serve``) hands the app
to Azure's own worker runtime (``azure_functions_runtime``) with the host's protobuf messages,
which indexes it, loads its functions and runs every invocation; devhost itself routes HTTP
requests (uvicorn), fires timers on their schedules and reads host.json and
local.settings.json. Never deployed.
"""
