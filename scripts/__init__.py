"""Operator programs (the release, the smoke test, checks), never deployed with the app;
a package so that ``manage.py`` can import them."""
