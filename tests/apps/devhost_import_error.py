"""An app whose import fails: the runtime reports the missing module by name."""

import azure.functions as func
import module_that_is_not_installed  # type: ignore[import-not-found]  # noqa: F401

app = func.FunctionApp()
