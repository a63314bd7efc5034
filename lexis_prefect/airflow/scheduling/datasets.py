"""``airflow.datasets``: ``Dataset``, ``DatasetAlias`` and the ``&`` / ``|`` expressions over them.

Ported from Airflow 2.10.5 (``airflow/datasets/__init__.py``, Apache-2.0): the URI is checked and
normalised at definition exactly as there (empty, blank or non-ASCII refused, the ``airflow``
scheme reserved, auth info dropped with a warning, query sorted, trailing slashes and the fragment
removed, the scheme lower-cased). Airflow then applies a provider's normaliser for the scheme; a
bare ``apache-airflow`` install has one only for ``file`` (a no-op), which is what the shim does,
so ``s3://`` / ``postgres://`` URIs are kept as Airflow without those providers keeps them.

What Airflow keeps in its database is not here: a ``DatasetAlias`` in a ``schedule`` cannot be
expanded to the datasets attached to it in earlier runs (Airflow's ``expand_alias_to_datasets``),
so it resolves to none, as in a fresh Airflow; the deployment trigger follows the alias itself
(:mod:`lexis_prefect.airflow.scheduling.triggers`).
"""

from __future__ import annotations

import os
import urllib.parse
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any, ClassVar, TypedDict

__all__ = [
    "BaseDataset",
    "Dataset",
    "DatasetAlias",
    "DatasetAliasEvent",
    "DatasetAll",
    "DatasetAny",
    "extract_event_key",
]

#: Longest URI Airflow accepts (its ``attr.validators.max_len(3000)``).
MAX_URI_LENGTH = 3000


def _normalize_noop(parts: urllib.parse.SplitResult) -> urllib.parse.SplitResult:
    return parts


#: Scheme normalisers of a bare ``apache-airflow`` install (``file`` only, a no-op).
URI_NORMALIZERS: dict[str, Callable[[urllib.parse.SplitResult], urllib.parse.SplitResult]] = {"file": _normalize_noop}


def sanitize_uri(uri: str) -> str:
    """Airflow's ``_sanitize_uri``: check a dataset URI and return it normalised."""
    if not uri:
        raise ValueError("Dataset URI cannot be empty")
    if uri.isspace():
        raise ValueError("Dataset URI cannot be just whitespace")
    if not uri.isascii():
        raise ValueError("Dataset URI must only consist of ASCII characters")
    parsed = urllib.parse.urlsplit(uri)
    if not parsed.scheme and not parsed.netloc:  # does not look like a URI
        return uri
    scheme = parsed.scheme.lower()
    if not scheme or scheme.startswith("x-"):
        return uri
    if scheme == "airflow":
        raise ValueError("Dataset scheme 'airflow' is reserved")
    _, auth_exists, netloc = parsed.netloc.rpartition("@")
    if auth_exists:
        warnings.warn(
            "A dataset URI should not contain auth info (e.g. username or "
            "password). It has been automatically dropped.",
            UserWarning,
            stacklevel=4,
        )
    query = urllib.parse.urlencode(sorted(urllib.parse.parse_qsl(parsed.query))) if parsed.query else ""
    parsed = parsed._replace(scheme=scheme, netloc=netloc, path=parsed.path.rstrip("/") or "/", query=query, fragment="")
    normalizer = URI_NORMALIZERS.get(scheme)
    if normalizer is not None:
        parsed = normalizer(parsed)
    return urllib.parse.urlunsplit(parsed)


def extract_event_key(value: str | Dataset | DatasetAlias) -> str:
    """The key of an inlet or outlet event: an alias's name, a dataset's URI, a string sanitised."""
    if isinstance(value, DatasetAlias):
        return value.name
    if isinstance(value, Dataset):
        return value.uri
    return sanitize_uri(str(value))


class BaseDataset:
    """What ``DAG(schedule=...)`` takes besides times: a dataset, an alias, or ``&`` / ``|`` of them."""

    def __bool__(self) -> bool:
        return True

    def __or__(self, other: BaseDataset) -> BaseDataset:
        if not isinstance(other, BaseDataset):
            return NotImplemented
        return DatasetAny(self, other)

    def __and__(self, other: BaseDataset) -> BaseDataset:
        if not isinstance(other, BaseDataset):
            return NotImplemented
        return DatasetAll(self, other)

    def as_expression(self) -> Any:
        """The JSON form Airflow stores for display (``{"all": [...]}``, ``{"any": [...]}``, a URI)."""
        raise NotImplementedError

    def evaluate(self, statuses: dict[str, bool]) -> bool:
        """Whether the condition holds when the datasets marked True in ``statuses`` were updated."""
        raise NotImplementedError

    def iter_datasets(self) -> Iterator[tuple[str, Dataset]]:
        raise NotImplementedError

    def iter_dataset_aliases(self) -> Iterator[DatasetAlias]:
        raise NotImplementedError


class DatasetAlias(BaseDataset):
    """A name under which a task emits events for datasets it picks at run time."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, DatasetAlias):
            return self.name == other.name
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"DatasetAlias(name={self.name!r})"

    def iter_datasets(self) -> Iterator[tuple[str, Dataset]]:
        return iter(())

    def iter_dataset_aliases(self) -> Iterator[DatasetAlias]:
        yield self


class DatasetAliasEvent(TypedDict):
    """An event a task emits through an alias: ``outlet_events[alias].add(dataset, extra)``."""

    source_alias_name: str
    dest_dataset_uri: str
    extra: dict[str, Any]


class Dataset(os.PathLike, BaseDataset):
    """A data dependency between DAGs, named by a URI (checked and normalised at definition)."""

    __version__: ClassVar[int] = 1

    def __init__(self, uri: str, extra: dict[str, Any] | None = None) -> None:
        uri = sanitize_uri(uri)
        if not 1 <= len(uri) <= MAX_URI_LENGTH:
            raise ValueError(f"Length of 'uri' must be <= {MAX_URI_LENGTH}: {len(uri)}")
        self.uri = uri
        self.extra = extra

    def __fspath__(self) -> str:
        return self.uri

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, self.__class__):
            return self.uri == other.uri
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.uri)

    def __repr__(self) -> str:
        return f"Dataset(uri={self.uri!r}, extra={self.extra!r})"

    @property
    def normalized_uri(self) -> str | None:
        """The URI through its scheme's normaliser, or None without one (Airflow's property)."""
        parsed = urllib.parse.urlsplit(self.uri)
        normalizer = URI_NORMALIZERS.get(parsed.scheme.lower()) if parsed.scheme else None
        return None if normalizer is None else urllib.parse.urlunsplit(normalizer(parsed))

    def as_expression(self) -> Any:
        return self.uri

    def iter_datasets(self) -> Iterator[tuple[str, Dataset]]:
        yield self.uri, self

    def iter_dataset_aliases(self) -> Iterator[DatasetAlias]:
        return iter(())

    def evaluate(self, statuses: dict[str, bool]) -> bool:
        return statuses.get(self.uri, False)


class _DatasetBooleanCondition(BaseDataset):
    """``&`` or ``|`` over dataset expressions."""

    agg_func: Callable[[Iterable[bool]], bool]
    word: ClassVar[str]

    def __init__(self, *objects: BaseDataset) -> None:
        if not all(isinstance(o, BaseDataset) for o in objects):
            raise TypeError("expect dataset expressions in condition")
        self.objects: list[BaseDataset] = [
            _DatasetAliasCondition(o.name) if isinstance(o, DatasetAlias) else o for o in objects
        ]

    def evaluate(self, statuses: dict[str, bool]) -> bool:
        return type(self).agg_func(x.evaluate(statuses=statuses) for x in self.objects)

    def iter_datasets(self) -> Iterator[tuple[str, Dataset]]:
        seen: set[str] = set()  # the first instance of a URI wins, as in Airflow
        for o in self.objects:
            for key, value in o.iter_datasets():
                if key not in seen:
                    seen.add(key)
                    yield key, value

    def iter_dataset_aliases(self) -> Iterator[DatasetAlias]:
        for o in self.objects:
            yield from o.iter_dataset_aliases()

    def as_expression(self) -> Any:
        return {self.word: [o.as_expression() for o in self.objects]}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(map(str, self.objects))})"

    def _flattened(self, kind: type[_DatasetBooleanCondition], other: Any) -> Any:
        """``X op (Y op Z)`` as ``X op Y op Z``, as Airflow builds it."""
        if not isinstance(other, BaseDataset):
            return NotImplemented
        return kind(*self.objects, other)


class DatasetAny(_DatasetBooleanCondition):
    """Any one of the expressions (``a | b``)."""

    agg_func = any
    word = "any"

    def __or__(self, other: BaseDataset) -> BaseDataset:
        return self._flattened(DatasetAny, other)


class _DatasetAliasCondition(DatasetAny):
    """An alias in a condition: Airflow expands it to the datasets its past events named (none here)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.objects = []

    def __repr__(self) -> str:
        return "_DatasetAliasCondition()"

    def as_expression(self) -> Any:
        return {"alias": self.name}

    def iter_dataset_aliases(self) -> Iterator[DatasetAlias]:
        yield DatasetAlias(self.name)


class DatasetAll(_DatasetBooleanCondition):
    """Every one of the expressions (``a & b``, or a list given as ``schedule``)."""

    agg_func = all
    word = "all"

    def __and__(self, other: BaseDataset) -> BaseDataset:
        return self._flattened(DatasetAll, other)
