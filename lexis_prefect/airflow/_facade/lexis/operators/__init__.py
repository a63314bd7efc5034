"""``lexis.operators`` (lexis-prefect shim facade): the LEXIS operators are not provided yet."""
