"""``lexis.datatypes`` (lexis-prefect shim facade)."""
