"""DAG params: ``Param`` and ``ParamsDict``, ported from Airflow 2.10.5 ``airflow/models/param.py``.

LEXIS DAG files declare ``params={"job1": Param({...}, schema=...)}`` and the run's conf replaces whole
values, so the behaviour users can observe is copied line for line: schema from the keyword arguments,
``jsonschema`` validation with a ``FormatChecker``, the ISO-8601 fallback for ``format: date-time``, the
deprecation warnings, ``ParamsDict.__getitem__`` resolving while ``items()``/``values()``/``get_param``
hand out the raw ``Param`` objects, and the error texts (``"Invalid input for param <k>: ..."``), which
users and tests grep.

Deliberate differences from Airflow, each one turning a late or confusing failure into a clear one:

* ``NOTSET`` survives ``copy``/``deepcopy``/pickle as the same object. Airflow's ``ArgNotSet`` does not,
  so a deep-copied ``Param`` without default reports ``has_value == True`` and dumps an ``ArgNotSet``
  object instead of ``None``; ``resolve`` behaves the same either way (it checks ``isinstance``).
* ``Param(schema=SomeClass)`` (a pydantic model, TypedDict, dataclass...) raises ``TypeError`` at
  construction, naming the fix; Airflow accepts it and fails later, inside jsonschema, with
  ``TypeError: argument of type 'type' is not iterable``.
* A validation error raised by a ``false`` sub-schema (``properties={"x": False}``) becomes a
  ``ParamValidationError``; Airflow crashes there with ``AttributeError: 'bool' object has no attribute
  'get'`` while looking for the date-time fallback.

Not ported: ``serialize``/``deserialize`` (no DAG serialization here), ``DagParam`` and ``process_params``
(the params merge belongs to the runner).
"""

from __future__ import annotations

import copy
import datetime
import json
import warnings
from collections.abc import ItemsView, Iterator, Mapping, MutableMapping, ValuesView
from typing import Any, ClassVar

from lexis_prefect.airflow.exceptions import ParamValidationError, RemovedInAirflow3Warning

__all__ = ["NOTSET", "ArgNotSet", "Param", "ParamsDict"]


class ArgNotSet:
    """Type of ``NOTSET``, the "no argument given" marker for places where ``None`` is a valid value.

    Unlike Airflow's, the one instance is kept by copy, deepcopy and pickle, so ``x is NOTSET`` stays
    true for params that went through ``copy.deepcopy`` (as every DAG run's params do).
    """

    _instance: ClassVar[ArgNotSet | None] = None

    def __new__(cls) -> ArgNotSet:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __copy__(self) -> ArgNotSet:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> ArgNotSet:
        return self

    def __reduce__(self) -> str:
        return "NOTSET"

    def __repr__(self) -> str:
        return "NOTSET"


NOTSET = ArgNotSet()
"""Sentinel default: the argument was not given."""


class Param:
    """A param's default value plus the JSON schema its values must satisfy.

    Without a schema it accepts anything and returns the default.

    :param default: the value this Param holds
    :param description: optional help text
    :param schema: the JSON schema (a dict); if not given, all other keyword arguments form it, so
        ``Param("", type="string")`` has the schema ``{"type": "string"}``. A class is refused at once
        (Airflow would only fail when validating): pass ``Model.model_json_schema()`` for a pydantic model.
    """

    __version__: ClassVar[int] = 1

    CLASS_IDENTIFIER = "__class"

    def __init__(self, default: Any = NOTSET, description: str | None = None, **kwargs: Any) -> None:
        if default is not NOTSET:
            self._warn_if_not_json(default)
        self.value = default
        self.description = description
        self.schema = kwargs.pop("schema") if "schema" in kwargs else kwargs
        if isinstance(self.schema, type):
            raise TypeError(
                f"Param schema must be a JSON schema dict, not the class {self.schema.__qualname__}; "
                f"for a pydantic model pass schema={self.schema.__name__}.model_json_schema() "
                f"(for a TypedDict or dataclass: pydantic.TypeAdapter({self.schema.__name__}).json_schema())"
            )

    def __copy__(self) -> Param:
        return Param(self.value, self.description, schema=self.schema)

    @staticmethod
    def _warn_if_not_json(value: Any) -> None:
        try:
            json.dumps(value)
        except Exception:
            warnings.warn(
                "The use of non-json-serializable params is deprecated and will be removed in "
                "a future release",
                RemovedInAirflow3Warning,
                stacklevel=1,
            )

    @staticmethod
    def _warn_if_not_rfc3339_dt(value: Any) -> Any:
        """Accept an ISO-8601 datetime that failed the RFC 3339 check, with Airflow's warnings."""
        from pendulum.parsing import parse_iso8601

        try:
            iso8601_value = parse_iso8601(value)
        except Exception:
            return None
        if not isinstance(iso8601_value, datetime.datetime):
            return None
        warnings.warn(
            f"The use of non-RFC3339 datetime: {value!r} is deprecated "
            "and will be removed in a future release",
            RemovedInAirflow3Warning,
            stacklevel=1,
        )
        if iso8601_value.utcoffset() is None:
            warnings.warn(
                "The use naive datetime is deprecated and will be removed in a future release",
                RemovedInAirflow3Warning,
                stacklevel=1,
            )
        return value

    def resolve(self, value: Any = NOTSET, suppress_exception: bool = False) -> Any:
        """Validate ``value`` (or the default) against the schema and return it, storing it as the value.

        :param value: a new value for the Param (a run's conf); the default if not given
        :param suppress_exception: return ``None`` instead of raising when validation fails
        :raises ParamValidationError: no value and no default, or the value breaks the schema
        """
        import jsonschema
        from jsonschema import FormatChecker
        from jsonschema.exceptions import ValidationError

        if value is not NOTSET:
            self._warn_if_not_json(value)
        final_val = self.value if value is NOTSET else value
        if isinstance(final_val, ArgNotSet):
            if suppress_exception:
                return None
            raise ParamValidationError("No value passed and Param has no default value")
        try:
            jsonschema.validate(final_val, self.schema, format_checker=FormatChecker())
        except ValidationError as err:
            # err.schema is a bool for a `false` sub-schema: Airflow crashes on .get here.
            if isinstance(err.schema, Mapping) and err.schema.get("format") == "date-time":
                rfc3339_value = self._warn_if_not_rfc3339_dt(final_val)
                if rfc3339_value:
                    self.value = rfc3339_value
                    return rfc3339_value
            if suppress_exception:
                return None
            error = ParamValidationError(err)
            error.field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
            error.reason = err.message
            raise error from None
        self.value = final_val
        return final_val

    def dump(self) -> dict[str, Any]:
        """The Param as a dict (class identifier, value, description, schema); no value dumps as None."""
        out_dict: dict[str, Any] = {self.CLASS_IDENTIFIER: f"{self.__module__}.{self.__class__.__name__}"}
        out_dict.update(self.__dict__)
        if self.value is NOTSET:
            out_dict["value"] = None
        return out_dict

    @property
    def has_value(self) -> bool:
        return self.value is not NOTSET and self.value is not None


class ParamsDict(MutableMapping[str, Any]):
    """The params of a DAG or task: every value is held as a ``Param``.

    Reading a key (``pd[k]``, ``pd.get(k)``) validates and returns the value; ``items()``, ``values()``
    and ``get_param(k)`` give the ``Param`` objects. Assigning a plain value to an existing key validates
    it against that key's schema; a new key gets a schema-less ``Param``.

    :param dict_obj: initial params; plain values are wrapped in ``Param``
    :param suppress_exception: on a validation failure, read as ``None`` instead of raising
    """

    __version__: ClassVar[int] = 1
    __slots__ = ["__dict", "suppress_exception"]

    def __init__(self, dict_obj: Mapping[str, Any] | None = None, suppress_exception: bool = False) -> None:
        params_dict: dict[str, Param] = {}
        dict_obj = dict_obj or {}
        for k, v in dict_obj.items():
            if not isinstance(v, Param):
                params_dict[k] = Param(v)
            else:
                params_dict[k] = v
        self.__dict = params_dict
        self.suppress_exception = suppress_exception

    def __bool__(self) -> bool:
        return bool(self.__dict)

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, ParamsDict):
            return self.dump() == other.dump()
        if isinstance(other, dict):
            return self.dump() == other
        return NotImplemented

    def __copy__(self) -> ParamsDict:
        return ParamsDict(self.__dict, self.suppress_exception)

    def __deepcopy__(self, memo: dict[int, Any] | None) -> ParamsDict:
        return ParamsDict(copy.deepcopy(self.__dict, memo), self.suppress_exception)

    def __contains__(self, o: object) -> bool:
        return o in self.__dict

    def __len__(self) -> int:
        return len(self.__dict)

    def __delitem__(self, v: str) -> None:
        del self.__dict[v]

    def __iter__(self) -> Iterator[str]:
        return iter(self.__dict)

    def __repr__(self) -> str:
        return repr(self.dump())

    def __setitem__(self, key: str, value: Any) -> None:
        """Store ``value``; a plain value for an existing key must satisfy that key's schema."""
        if isinstance(value, Param):
            param = value
        elif key in self.__dict:
            param = self.__dict[key]
            try:
                param.resolve(value=value, suppress_exception=self.suppress_exception)
            except ParamValidationError as ve:
                raise ve.located(key) from None
        else:
            param = Param(value)

        self.__dict[key] = param

    def __getitem__(self, key: str) -> Any:
        """Validate and return the value of ``key``."""
        param = self.__dict[key]
        return param.resolve(suppress_exception=self.suppress_exception)

    def get_param(self, key: str) -> Param:
        """The ``Param`` object of ``key``, unvalidated."""
        return self.__dict[key]

    def items(self) -> ItemsView[str, Param]:  # type: ignore[override]
        return ItemsView(self.__dict)

    def values(self) -> ValuesView[Param]:  # type: ignore[override]
        return ValuesView(self.__dict)

    def update(self, *args: Any, **kwargs: Any) -> None:
        """Like ``dict.update``, through ``__setitem__`` (so plain values are validated).

        From another ``ParamsDict`` its ``Param`` objects are taken as they are.
        """
        if len(args) == 1 and not kwargs and isinstance(args[0], ParamsDict):
            return super().update(args[0].__dict)
        super().update(*args, **kwargs)

    def dump(self) -> dict[str, Any]:
        """All values as a plain dict; a value that fails validation dumps as ``None``."""
        return {k: v.resolve(suppress_exception=True) for k, v in self.items()}

    def validate(self) -> dict[str, Any]:
        """Validate every param and return the values as a plain dict.

        :raises ParamValidationError: ``"Invalid input for param <k>: <reason>"`` for the first bad one
        """
        resolved_dict = {}
        try:
            for k, v in self.items():
                resolved_dict[k] = v.resolve(suppress_exception=self.suppress_exception)
        except ParamValidationError as ve:
            raise ve.located(k) from None

        return resolved_dict
