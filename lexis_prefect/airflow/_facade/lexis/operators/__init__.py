"""``lexis.operators`` (lexis-prefect shim facade)."""
