"""``airflow.operators.trigger_dagrun`` (lexis-prefect shim facade)."""

from lexis_prefect.airflow.standard.trigger_dagrun import XCOM_LOGICAL_DATE_ISO, XCOM_RUN_ID, TriggerDagRunOperator

__all__ = ["XCOM_LOGICAL_DATE_ISO", "XCOM_RUN_ID", "TriggerDagRunOperator"]
