"""``airflow.sdk.bases.branch`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.operators import BaseBranchOperator, BranchMixIn

__all__ = ["BaseBranchOperator", "BranchMixIn"]
