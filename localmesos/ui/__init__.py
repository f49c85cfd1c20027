"""The live page that every master serves at `/` (static files in `static/`)."""
