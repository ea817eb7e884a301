"""Operator scripts (smoke test); a package so that ``manage.py`` can import them."""
