"""``airflow.models.Variable`` (2.10.5) backed by Prefect Variables, and ``{{ var.value.x }}``.

Airflow reads a variable from its secrets backends in order: the environment first
(``AIRFLOW_VAR_<KEY>``, the key upper-cased), then the metadata database. The shim keeps that
order with Prefect Variables in place of the database. Airflow variables are strings
(``serialize_json`` stores JSON text); a Prefect Variable holds JSON, so a value set from Prefect
as a number, list or object reads back as its JSON text, as if Airflow had stored it with
``serialize_json=True``.

Prefect variable names allow lowercase letters, digits, ``-`` and ``_`` only: the key
``My.Key`` is stored as ``my_key`` (:func:`prefect_name`), so keys that differ only in case or in
other characters share one Prefect Variable (documented in docs/airflow-compat.md).
"""

from __future__ import annotations

import json
import logging
import os
import re
from typing import Any

__all__ = ["VAR_ENV_PREFIX", "Variable", "VariableAccessor", "prefect_name"]

VAR_ENV_PREFIX = "AIRFLOW_VAR_"
log = logging.getLogger(__name__)
_NO_DEFAULT = object()
_MISSING = object()


def prefect_name(key: str) -> str:
    """The Prefect Variable name that holds the Airflow variable ``key``."""
    if not isinstance(key, str) or not key:
        raise ValueError(f"An Airflow variable key must be a non-empty str, got {key!r}")
    return re.sub(r"[^a-z0-9_-]", "_", key.lower())


def _from_environment(key: str) -> str | None:
    return os.environ.get(VAR_ENV_PREFIX + key.upper())


def _from_prefect(key: str) -> str | None:
    from prefect.variables import Variable as PrefectVariable

    value = PrefectVariable.get(prefect_name(key), default=_MISSING)
    if value is _MISSING or value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)


class Variable:
    """Airflow's Variable API (class methods); values are read environment first, then Prefect."""

    def __init__(self, key: str | None = None, val: Any = None, description: str | None = None) -> None:
        self.key = key
        self.val = val
        self.description = description

    def __repr__(self) -> str:
        return f"{self.key} : {self.val}"

    @staticmethod
    def get_variable_from_secrets(key: str) -> str | None:
        """The raw string value, from the environment, else Prefect; None when it is nowhere."""
        value = _from_environment(key)
        if value is not None:
            return value
        return _from_prefect(key)

    @classmethod
    def get(cls, key: str, default_var: Any = _NO_DEFAULT, deserialize_json: bool = False) -> Any:
        """The value of ``key`` (JSON-decoded with ``deserialize_json``); KeyError without a default."""
        var_val = cls.get_variable_from_secrets(key=key)
        if var_val is None:
            if default_var is not _NO_DEFAULT:
                return default_var
            raise KeyError(f"Variable {key} does not exist")
        return json.loads(var_val) if deserialize_json else var_val

    @classmethod
    def setdefault(cls, key: str, default: Any, description: str | None = None, deserialize_json: bool = False) -> Any:
        """The value of ``key``; when missing, set it to ``default`` and return that."""
        obj = cls.get(key, default_var=None, deserialize_json=deserialize_json)
        if obj is None:
            if default is not None:
                cls.set(key=key, value=default, description=description, serialize_json=deserialize_json)
                return default
            raise ValueError("Default Value must be set")
        return obj

    @staticmethod
    def set(key: str, value: Any, description: str | None = None, serialize_json: bool = False, session: Any = None) -> None:
        """Store ``value`` (``str(value)``, or JSON text with ``serialize_json``) in a Prefect Variable.

        ``description`` has no place in a Prefect Variable and is dropped.
        """
        from prefect.variables import Variable as PrefectVariable

        Variable.check_for_write_conflict(key)
        stored_value = json.dumps(value, indent=2) if serialize_json else str(value)
        PrefectVariable.set(prefect_name(key), stored_value, overwrite=True)

    @staticmethod
    def update(key: str, value: Any, serialize_json: bool = False, session: Any = None) -> None:
        """Like ``set``, for a variable that exists (KeyError otherwise)."""
        Variable.check_for_write_conflict(key)
        if Variable.get_variable_from_secrets(key=key) is None:
            raise KeyError(f"Variable {key} does not exist")
        Variable.set(key, value, serialize_json=serialize_json)

    @staticmethod
    def delete(key: str, session: Any = None) -> int:
        """Delete the Prefect Variable of ``key``; the number deleted (0 or 1), as Airflow's rows."""
        from prefect.variables import Variable as PrefectVariable

        return 1 if PrefectVariable.unset(prefect_name(key)) else 0

    @staticmethod
    def check_for_write_conflict(key: str) -> None:
        """Warn when the environment defines ``key``: it wins over the value being written."""
        if _from_environment(key) is not None:
            backend = "EnvironmentVariablesBackend"
            log.warning(
                "The variable %s is defined in the %s secrets backend, which takes "
                "precedence over reading from the database. The value in the database will be "
                "updated, but to read it you have to delete the conflicting variable "
                "from %s",
                key,
                backend,
                backend,
            )


class VariableAccessor:
    """``{{ var.value.x }}`` / ``{{ var.json.x }}`` (``airflow.utils.context.VariableAccessor``)."""

    def __init__(self, deserialize_json: bool) -> None:
        self._deserialize_json = deserialize_json
        self.var: Any = None

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__"):
            raise AttributeError(key)
        self.var = Variable.get(key, deserialize_json=self._deserialize_json)
        return self.var

    def __repr__(self) -> str:
        return str(self.var)

    def get(self, key: str, default: Any = _NO_DEFAULT) -> Any:
        if default is _NO_DEFAULT:
            return Variable.get(key, deserialize_json=self._deserialize_json)
        return Variable.get(key, default, deserialize_json=self._deserialize_json)
