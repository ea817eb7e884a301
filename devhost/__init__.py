"""A local Azure Functions host for development and tests where Core Tools are unavailable.

``python -m devhost`` (or ``manage.py serve``, through ``devhost.server.serve``) indexes the
FunctionApp like the Python worker, serves its HTTP triggers with uvicorn and fires its timer
triggers on their schedules. Never deployed.
"""
