"""Two function apps in one module: the worker refuses to index it, and so must devhost."""

import azure.functions as func

first = func.FunctionApp()
second = func.FunctionApp()
