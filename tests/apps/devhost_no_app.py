"""A module without a function app."""

GREETING = "no FunctionApp here"
