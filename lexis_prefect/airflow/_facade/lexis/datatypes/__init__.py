"""``lexis.datatypes`` (lexis-prefect shim facade): not provided yet."""
