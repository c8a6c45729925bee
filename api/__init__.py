"""HTTP API (FastAPI) and CLI (typer). Nothing imports this package."""
