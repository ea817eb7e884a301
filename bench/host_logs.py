"""What every benchmark that starts devhost adds to its environment: the host's per-invocation
lines (``Executing``/``Executed``) at Warning, as a host.json ``"Function": "Warning"`` would
set them, so that writing a console line per request is not part of what is measured. Failures
are still logged."""

QUIET_INVOCATION_LOGS = {"AzureFunctionsJobHost__logging__logLevel__Function": "Warning"}
