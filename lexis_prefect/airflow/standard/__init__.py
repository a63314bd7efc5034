"""Airflow 2.10's "standard" operators, sensors and helpers that DAG files import, on the shim.

One module per concept, each ported from the Airflow 2.10.5 module named in its docstring and
served to DAG files by the facade under ``_facade/airflow`` (``airflow.operators.latest_only``...).
Airflow 3 moves most of them to ``airflow.providers.standard``; the module names here are stable
so that facade can serve the same objects. Nothing is imported here: the facade imports the
module it needs.
"""
