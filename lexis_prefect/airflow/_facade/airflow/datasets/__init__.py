"""``airflow.datasets`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.scheduling.datasets import (
    BaseDataset,
    Dataset,
    DatasetAlias,
    DatasetAliasEvent,
    DatasetAll,
    DatasetAny,
    extract_event_key,
)

__all__ = ["BaseDataset", "Dataset", "DatasetAlias", "DatasetAliasEvent", "DatasetAll", "DatasetAny", "extract_event_key"]
