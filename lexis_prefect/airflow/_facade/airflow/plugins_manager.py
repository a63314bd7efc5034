"""``airflow.plugins_manager`` (lexis-prefect shim facade): ``AirflowPlugin`` to subclass.

Airflow loads plugins from its plugins folder and entry points, and needs a custom timetable
registered in one only to serialise DAGs for its scheduler. The shim loads no plugins folder: a
timetable class is used where the DAG file (or a module it imports) passes it to ``DAG``, listed
in a plugin or not. A plugin's other parts (macros, views, links, listeners) have no effect here
(docs/airflow-compat.md).
"""

from typing import Any

from lexis_prefect.airflow.exceptions import AirflowException


class AirflowPluginException(AirflowException):
    """A plugin is invalid (no name)."""


class AirflowPlugin:
    """Airflow's plugin class: its attributes are kept as declared."""

    name: "str | None" = None
    source: Any = None
    hooks: "list[Any]" = []
    executors: "list[Any]" = []
    macros: "list[Any]" = []
    admin_views: "list[Any]" = []
    flask_blueprints: "list[Any]" = []
    menu_links: "list[Any]" = []
    appbuilder_views: "list[Any]" = []
    appbuilder_menu_items: "list[Any]" = []
    global_operator_extra_links: "list[Any]" = []
    operator_extra_links: "list[Any]" = []
    ti_deps: "list[Any]" = []
    timetables: "list[type]" = []
    listeners: "list[Any]" = []
    hook_lineage_readers: "list[type]" = []
    priority_weight_strategies: "list[type]" = []

    @classmethod
    def validate(cls) -> None:
        if not cls.name:
            raise AirflowPluginException("Your plugin needs a name.")

    @classmethod
    def on_load(cls, *args: Any, **kwargs: Any) -> None:
        """Called when Airflow loads the plugin (never here)."""


__all__ = ["AirflowPlugin", "AirflowPluginException"]
