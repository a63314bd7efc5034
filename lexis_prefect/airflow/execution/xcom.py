"""XCom values as Airflow 2.10 stores them: through JSON, so what a task pulls is what a run
through Airflow's database would give back.

Airflow's ``XComEncoder`` hands JSON what it can encode natively and everything else to its
``serde``: a top-level tuple, any set or frozenset, datetimes, dates, timedeltas and Decimals
come back as themselves; a tuple nested in a list or dict comes back a list (JSON arrays); dict
keys come back as strings; a value nothing can encode (``bytes``, an arbitrary object) fails the
task that returned or pushed it. Dataclasses, pydantic and attrs objects are refused at push
here: Airflow 2.10 stores them but, with its default ``allowed_deserialization_classes``, cannot
load them back.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import json
from typing import Any

CLASSNAME, VERSION, DATA = "__classname__", "__version__", "__data__"

_COLLECTIONS: dict[str, type] = {"builtins.tuple": tuple, "builtins.set": set, "builtins.frozenset": frozenset}


def _tag(classname: str, data: Any) -> dict[str, Any]:
    return {CLASSNAME: classname, VERSION: 1, DATA: data}


def _serialize(value: Any) -> Any:
    """Airflow's ``serde.serialize`` for the types it handles without extra packages."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value.value if isinstance(value, enum.Enum) else value
    if isinstance(value, list) or getattr(type(value), "_airflow_lazy_sequence", False):
        return [_serialize(v) for v in value]  # a pulled mapped result is stored as a list, as Airflow
    if isinstance(value, dict):
        if CLASSNAME in value:
            raise AttributeError(f"reserved key {CLASSNAME} found in dict to serialize")
        return {str(k): _serialize(v) for k, v in value.items()}
    if isinstance(value, (tuple, set, frozenset)):
        kind = "tuple" if isinstance(value, tuple) else type(value).__name__
        return _tag(f"builtins.{kind}", [_serialize(v) for v in value])
    if isinstance(value, dt.datetime):
        return _tag("datetime.datetime", value.isoformat())
    if isinstance(value, dt.date):
        return _tag("datetime.date", value.isoformat())
    if isinstance(value, dt.timedelta):
        return _tag("datetime.timedelta", value.total_seconds())
    if isinstance(value, decimal.Decimal):
        return _tag("decimal.Decimal", str(value))
    raise TypeError(f"cannot serialize object of type {type(value)}")


class _Encoder(json.JSONEncoder):
    def default(self, o: Any) -> Any:
        return _serialize(o)

    def encode(self, o: Any) -> str:
        if isinstance(o, dict) and CLASSNAME in o:
            raise AttributeError(f"reserved key {CLASSNAME} found in dict to serialize")
        return super().encode(_serialize(o) if isinstance(o, tuple) else o)


def _revive(tagged: dict[str, Any]) -> Any:
    classname = tagged.get(CLASSNAME)
    if classname is None:
        return tagged
    data = tagged[DATA]
    if classname in _COLLECTIONS:
        return _COLLECTIONS[classname](data)
    if classname == "datetime.datetime":
        return dt.datetime.fromisoformat(data)
    if classname == "datetime.date":
        return dt.date.fromisoformat(data)
    if classname == "datetime.timedelta":
        return dt.timedelta(seconds=data)
    return decimal.Decimal(data)


def serialize_value(value: Any) -> str:
    """The stored form; raises TypeError for a value Airflow could not store."""
    return json.dumps(value, cls=_Encoder)


def deserialize_value(stored: str) -> Any:
    """A fresh copy of the value, as a pull from Airflow's database gives it."""
    return json.loads(stored, object_hook=_revive)
