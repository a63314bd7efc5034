"""Installs the lexis-prefect Airflow import hook at interpreter start.

``lexis_prefect_airflow.pth`` (next to this module in site-packages) imports it, so that an
unchanged Airflow DAG file run as ``python dag.py`` (or loaded by a Prefect worker) finds
``airflow`` and ``lexis`` (see ``lexis_prefect.airflow._finder``). ``LEXIS_PREFECT_AIRFLOW=off``
skips it before anything is imported. This file is copied into site-packages also by an
editable install, so it stays tiny and stable and delegates the rest to the package; it must
never break interpreter start: if the package is gone it does nothing, and any other failure
is one line on stderr.
"""


def _install() -> None:
    import os

    if os.environ.get("LEXIS_PREFECT_AIRFLOW", "").strip().lower() == "off":
        return
    try:
        from lexis_prefect.airflow._finder import install_from_env
    except ImportError as exc:
        if exc.name in ("lexis_prefect", "lexis_prefect.airflow", "lexis_prefect.airflow._finder"):
            return  # uninstalled, or an editable checkout that moved: nothing to serve
        raise
    install_from_env()


try:
    _install()
except Exception as exc:  # noqa: BLE001 - interpreter start must go on
    import sys

    sys.stderr.write(f"lexis-prefect: the Airflow import hook was not installed: {exc!r}\n")
    del sys
del _install
