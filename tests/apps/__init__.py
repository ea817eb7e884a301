"""Small function apps that the devhost tests serve (never the real function_app)."""
