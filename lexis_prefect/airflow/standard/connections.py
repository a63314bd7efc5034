"""Airflow connections (2.10.5): ``Connection`` (``airflow.models.connection``), ``BaseHook``
(``airflow.hooks.base``) and ``{{ conn.x.host }}`` in templates.

Where a connection comes from, in Airflow's order:

1. the environment variable ``AIRFLOW_CONN_<CONN_ID>`` (the id upper-cased), a URI
   (``postgres://user:pass@host:5432/db?sslmode=require``) or, starting with ``{``, the JSON form
   (``{"conn_type": "postgres", "host": ..., "extra": {...}}``), exactly as Airflow parses them;
2. a Prefect ``Secret`` block named ``airflow-conn-<conn-id>`` (the id lower-cased, every
   character other than a letter or digit turned into ``-``) whose value is the URI or the JSON
   form (as text or as an object). A Secret keeps the password encrypted at rest and masked in
   the UI.

Neither found: ``AirflowNotFoundException("The conn_id `x` isn't defined")``. Passwords never reach
a log line: ``repr(conn)`` is the id, and retrieval logs only the id, as Airflow does.
"""

from __future__ import annotations

import json
import logging
import os
import re
import warnings
from contextlib import suppress
from json import JSONDecodeError
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from lexis_prefect.airflow.exceptions import AirflowException, AirflowNotFoundException, RemovedInAirflow3Warning

__all__ = ["CONN_ENV_PREFIX", "BaseHook", "Connection", "ConnectionAccessor", "block_name", "sanitize_conn_id"]

CONN_ENV_PREFIX = "AIRFLOW_CONN_"
RE_SANITIZE_CONN_ID = re.compile(r"^[\w\#\!\(\)\-\.\:\/\\]{1,}$")
CONN_ID_MAX_LEN = 250
log = logging.getLogger(__name__)


def sanitize_conn_id(conn_id: str | None, max_length: int = CONN_ID_MAX_LEN) -> str | None:
    """``conn_id`` if it is made of allowed characters (letters, digits, ``#!-_.:/\\()``), else None."""
    if not isinstance(conn_id, str) or len(conn_id) > max_length:
        return None
    res = RE_SANITIZE_CONN_ID.match(conn_id)
    return None if res is None else res.group(0)


def block_name(conn_id: str) -> str:
    """The Prefect block name that may hold ``conn_id``: ``airflow-conn-<id>``."""
    return "airflow-conn-" + re.sub(r"[^a-z0-9]+", "-", conn_id.lower()).strip("-")


def _parse_netloc_to_hostname(uri_parts: Any) -> str:
    hostname = unquote(uri_parts.hostname or "")
    if "/" in hostname:
        hostname = uri_parts.netloc
        if "@" in hostname:
            hostname = hostname.rsplit("@", 1)[1]
        if ":" in hostname:
            hostname = hostname.split(":", 1)[0]
        hostname = unquote(hostname)
    return hostname


class Connection:
    """A connection's fields (``conn_type``, ``host``, ``login``, ``password``, ``schema``, ``port``,
    ``extra``), built from them or from a URI, with Airflow's parsing and ``get_uri``."""

    EXTRA_KEY = "__extra__"

    def __init__(
        self,
        conn_id: str | None = None,
        conn_type: str | None = None,
        description: str | None = None,
        host: str | None = None,
        login: str | None = None,
        password: str | None = None,
        schema: str | None = None,
        port: int | None = None,
        extra: str | dict | None = None,
        uri: str | None = None,
    ) -> None:
        self.conn_id = sanitize_conn_id(conn_id)
        self.description = description
        if extra and not isinstance(extra, str):
            extra = json.dumps(extra)
        if uri and (conn_type or host or login or password or schema or port or extra):
            raise AirflowException(
                "You must create an object using the URI or individual values "
                "(conn_type, host, login, password, schema, port or extra)."
                "You can't mix these two ways to create this object."
            )
        if uri:
            self._parse_from_uri(uri)
        else:
            self.conn_type = conn_type
            self.host = host
            self.login = login
            self.password = password
            self.schema = schema
            self.port = port
            self.extra = extra
        if self.extra:
            self._validate_extra(self.extra, self.conn_id)

    @staticmethod
    def _validate_extra(extra: str | None, conn_id: str | None) -> None:
        """``extra`` should be JSON text of a dict; Airflow 2 only warns otherwise."""
        if extra is None:
            return
        try:
            extra_parsed = json.loads(extra)
            if not isinstance(extra_parsed, dict):
                warnings.warn(
                    "Encountered JSON value in `extra` which does not parse as a dictionary in "
                    f"connection {conn_id!r}. From Airflow 3.0, the `extra` field must contain a JSON "
                    "representation of a Python dict.",
                    RemovedInAirflow3Warning,
                    stacklevel=3,
                )
        except json.JSONDecodeError:
            warnings.warn(
                f"Encountered non-JSON in `extra` field for connection {conn_id!r}. Support for "
                "non-JSON `extra` will be removed in Airflow 3.0",
                RemovedInAirflow3Warning,
                stacklevel=2,
            )

    @staticmethod
    def _normalize_conn_type(conn_type: str) -> str:
        if conn_type == "postgresql":
            return "postgres"
        return conn_type.replace("-", "_") if "-" in conn_type else conn_type

    def _parse_from_uri(self, uri: str) -> None:
        schemes_count_in_uri = uri.count("://")
        if schemes_count_in_uri > 2:
            raise AirflowException(f"Invalid connection string: {uri}.")
        host_with_protocol = schemes_count_in_uri == 2
        uri_parts = urlsplit(uri)
        conn_type = uri_parts.scheme
        self.conn_type = self._normalize_conn_type(conn_type)
        rest_of_the_url = uri.replace(f"{conn_type}://", ("" if host_with_protocol else "//"))
        if host_with_protocol:
            uri_splits = rest_of_the_url.split("://", 1)
            if "@" in uri_splits[0] or ":" in uri_splits[0]:
                raise AirflowException(f"Invalid connection string: {uri}.")
        uri_parts = urlsplit(rest_of_the_url)
        protocol = uri_parts.scheme if host_with_protocol else None
        host = _parse_netloc_to_hostname(uri_parts)
        self.host = f"{protocol}://{host}" if host and protocol else host
        quoted_schema = uri_parts.path[1:]
        self.schema = unquote(quoted_schema) if quoted_schema else quoted_schema
        self.login = unquote(uri_parts.username) if uri_parts.username else uri_parts.username
        self.password = unquote(uri_parts.password) if uri_parts.password else uri_parts.password
        self.port = uri_parts.port
        self.extra = None
        if uri_parts.query:
            query = dict(parse_qsl(uri_parts.query, keep_blank_values=True))
            self.extra = query[self.EXTRA_KEY] if self.EXTRA_KEY in query else json.dumps(query)

    def get_uri(self) -> str:
        """The connection as a URI (Airflow's format; extras as the query)."""
        if self.conn_type and "_" in self.conn_type:
            log.warning("Connection schemes (type: %s) shall not contain '_' according to RFC3986.", self.conn_type)
        uri = f"{self.conn_type.lower().replace('_', '-')}://" if self.conn_type else "//"
        if self.host and "://" in self.host:
            protocol, host = self.host.split("://", 1)
        else:
            protocol, host = None, self.host
        if protocol:
            uri += f"{protocol}://"
        authority_block = ""
        if self.login is not None:
            authority_block += quote(self.login, safe="")
        if self.password is not None:
            authority_block += ":" + quote(self.password, safe="")
        if authority_block > "":
            authority_block += "@"
            uri += authority_block
        host_block = ""
        if host:
            host_block += quote(host, safe="")
        if self.port:
            if host_block == "" and authority_block == "":
                host_block += f"@:{self.port}"
            else:
                host_block += f":{self.port}"
        if self.schema:
            host_block += f"/{quote(self.schema, safe='')}"
        uri += host_block
        if self.extra:
            try:
                query: str | None = urlencode(self.extra_dejson)
            except TypeError:
                query = None
            if query and self.extra_dejson == dict(parse_qsl(query, keep_blank_values=True)):
                uri += ("?" if self.schema else "/?") + query
            else:
                uri += ("?" if self.schema else "/?") + urlencode({self.EXTRA_KEY: self.extra})
        return uri

    def get_password(self) -> str | None:
        return self.password

    def get_extra(self) -> str | None:
        return self.extra

    def get_extra_dejson(self, nested: bool = False) -> dict:
        """``extra`` decoded from JSON (``nested``: string values that hold JSON decoded too)."""
        extra: dict = {}
        if self.extra:
            try:
                if nested:
                    for key, value in json.loads(self.extra).items():
                        extra[key] = value
                        if isinstance(value, str):
                            with suppress(JSONDecodeError):
                                extra[key] = json.loads(value)
                else:
                    extra = json.loads(self.extra)
            except JSONDecodeError:
                log.exception("Failed parsing the json for conn_id %s", self.conn_id)
        return extra

    @property
    def extra_dejson(self) -> dict:
        return self.get_extra_dejson()

    def to_dict(self, *, prune_empty: bool = False, validate: bool = True) -> dict[str, Any]:
        conn: dict[str, Any] = {
            "conn_id": self.conn_id,
            "conn_type": self.conn_type,
            "description": self.description,
            "host": self.host,
            "login": self.login,
            "password": self.password,
            "schema": self.schema,
            "port": self.port,
        }
        if prune_empty:
            conn = {k: v for k, v in conn.items() if v not in (None, "")}
        if (extra := self.extra_dejson) or not prune_empty:
            conn["extra"] = extra
        if validate:
            json.dumps(conn)
        return conn

    @classmethod
    def from_json(cls, value: str, conn_id: str | None = None) -> Connection:
        """The JSON form: ``{"conn_type": ..., "host": ..., "port": ..., "extra": {...}}``."""
        kwargs = json.loads(value)
        extra = kwargs.pop("extra", None)
        if extra:
            kwargs["extra"] = extra if isinstance(extra, str) else json.dumps(extra)
        conn_type = kwargs.pop("conn_type", None)
        if conn_type:
            kwargs["conn_type"] = cls._normalize_conn_type(conn_type)
        port = kwargs.pop("port", None)
        if port:
            try:
                kwargs["port"] = int(port)
            except ValueError:
                raise ValueError(f"Expected integer value for `port`, but got {port!r} instead.") from None
        return Connection(conn_id=conn_id, **kwargs)

    def as_json(self) -> str:
        conn_repr = self.to_dict(prune_empty=True, validate=False)
        conn_repr.pop("conn_id", None)
        return json.dumps(conn_repr)

    @staticmethod
    def deserialize(conn_id: str, value: str) -> Connection:
        """A secrets backend's value: the JSON form if it starts with ``{``, else a URI."""
        value = value.strip()
        if value[0] == "{":
            return Connection.from_json(conn_id=conn_id, value=value)
        return Connection(conn_id=conn_id, uri=value)

    @classmethod
    def get_connection_from_secrets(cls, conn_id: str) -> Connection:
        """From ``AIRFLOW_CONN_<ID>``, else the Secret block ``airflow-conn-<id>`` (module doc)."""
        value = os.environ.get(CONN_ENV_PREFIX + conn_id.upper())
        if value:
            return cls.deserialize(conn_id, value)
        try:
            value = _from_block(conn_id)
        except Exception:
            log.exception(
                "Unable to retrieve connection from secrets backend (%s). Checking subsequent secrets backend.",
                "PrefectBlock",
            )
            value = None
        if value:
            return cls.deserialize(conn_id, value)
        raise AirflowNotFoundException(f"The conn_id `{conn_id}` isn't defined")

    def __repr__(self) -> str:
        return self.conn_id or ""


def _from_block(conn_id: str) -> str | None:
    """The text of the Secret block ``airflow-conn-<id>`` (a URI, or the JSON form as text or
    object), None when there is none."""
    from prefect.blocks.system import Secret

    try:
        block = Secret.load(block_name(conn_id))
    except ValueError:  # no such block
        return None
    value = block.get()
    return value if isinstance(value, str) else json.dumps(value)


class BaseHook:
    """Hooks get their connection through ``get_connection`` (``airflow.hooks.base.BaseHook``)."""

    def __init__(self, logger_name: str | None = None) -> None:
        self._logger_name = logger_name

    @property
    def log(self) -> logging.Logger:
        return logging.getLogger(self._logger_name or f"airflow.task.hooks.{type(self).__module__}.{type(self).__name__}")

    @classmethod
    def get_connections(cls, conn_id: str) -> list[Connection]:
        warnings.warn(
            "`BaseHook.get_connections` method will be deprecated in the future."
            "Please use `BaseHook.get_connection` instead.",
            RemovedInAirflow3Warning,
            stacklevel=2,
        )
        return [cls.get_connection(conn_id)]

    @classmethod
    def get_connection(cls, conn_id: str) -> Connection:
        conn = Connection.get_connection_from_secrets(conn_id)
        log.info("Retrieving connection '%s'", conn.conn_id)
        return conn

    @classmethod
    def get_hook(cls, conn_id: str) -> Any:
        raise AirflowException(
            f"BaseHook.get_hook({conn_id!r}): provider hooks are not part of lexis-prefect; "
            "read the connection with BaseHook.get_connection (see docs/airflow-compat.md)"
        )

    def get_conn(self) -> Any:
        raise NotImplementedError()

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        return {}

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {}


class ConnectionAccessor:
    """``{{ conn.<id> }}`` / ``{{ conn.get(id, default) }}`` (``airflow.utils.context``)."""

    def __init__(self) -> None:
        self.var: Any = None

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__"):
            raise AttributeError(key)
        self.var = Connection.get_connection_from_secrets(key)
        return self.var

    def __repr__(self) -> str:
        return str(self.var)

    def get(self, key: str, default_conn: Any = None) -> Any:
        try:
            return Connection.get_connection_from_secrets(key)
        except AirflowNotFoundException:
            return default_conn
