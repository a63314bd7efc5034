"""``lexis.operators.scheduler`` (lexis-prefect shim facade)."""
