"""XComArgs derived from others (``.map(f)``, ``.zip(...)``, ``.concat(...)``) and the lazy
sequence a pull of a mapped task returns: Airflow 2.10's ``xcom_arg.py`` and ``LazyXComSelectSequence``.

Their length is what a mapped downstream expands to; their value is computed when a task pulls
it, element by element, as in Airflow (a ``map`` function runs once per element read).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from lexis_prefect.airflow.xcom_arg import XComArg

if TYPE_CHECKING:
    from lexis_prefect.airflow.baseoperator import BaseOperator

_NOTSET: Any = object()


class LazyXComSequence(Sequence):
    """The XComs of a mapped task's indexes, in map index order: what ``xcom_pull`` of it returns.

    A sequence, not a list (as Airflow's ``LazyXComSelectSequence``); pushed as an XCom it is
    stored as a list.
    """

    _airflow_lazy_sequence = True

    def __init__(self, values: list[Any]) -> None:
        self._values = values

    def __getitem__(self, index: Any) -> Any:
        return self._values[index]

    def __len__(self) -> int:
        return len(self._values)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str):
            return list(self) == list(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"LazyXComSequence([{len(self)} items])"

    def __str__(self) -> str:
        return str(self._values)


def _check_sequence(value: Any, what: str) -> None:
    if not isinstance(value, (Sequence, dict)):
        raise ValueError(f"XCom {what} expects sequence or dict, not {type(value).__name__}")


class _MapResult(Sequence):
    def __init__(self, value: Sequence | dict, callables: list[Callable[[Any], Any]]) -> None:
        self.value = value
        self.callables = callables

    def __getitem__(self, index: Any) -> Any:
        value = self.value[index]
        for f in self.callables:
            value = f(value)
        return value

    def __len__(self) -> int:
        return len(self.value)


class MapXComArg(XComArg):
    """``xcomarg.map(f)``: every element passed through ``f`` when read."""

    def __init__(self, arg: XComArg, callables: list[Callable[[Any], Any]]) -> None:
        for c in callables:
            if getattr(c, "_airflow_is_task_decorator", False):
                raise ValueError("map() argument must be a plain function, not a @task operator")
        self.arg = arg
        self.callables = callables

    @property
    def operator(self) -> BaseOperator:  # type: ignore[override]
        return self.arg.operator

    @property
    def key(self) -> str:  # type: ignore[override]
        return self.arg.key

    def iter_references(self) -> Iterator[tuple[BaseOperator, str]]:
        yield from self.arg.iter_references()

    def map(self, f: Callable[[Any], Any]) -> MapXComArg:
        return MapXComArg(self.arg, [*self.callables, f])  # arg.map(f1).map(f2) is one MapXComArg

    def map_length(self, length_of: Callable[[XComArg], int | None]) -> int | None:
        return self.arg.map_length(length_of)

    def resolve(self, context: dict[str, Any]) -> Any:
        value = self.arg.resolve(context)
        _check_sequence(value, "map")
        return _MapResult(value, self.callables)

    def __repr__(self) -> str:
        calls = "".join(f".map({getattr(f, '__name__', f)})" for f in self.callables)
        return f"{self.arg!r}{calls}"


class _ZipResult(Sequence):
    def __init__(self, values: list[Sequence | dict], fillvalue: Any) -> None:
        self.values = values
        self.fillvalue = fillvalue

    def __getitem__(self, index: Any) -> Any:
        if index >= len(self):
            raise IndexError(index)
        return tuple(self._get_or_fill(value, index) for value in self.values)

    def _get_or_fill(self, container: Sequence | dict, index: Any) -> Any:
        try:
            return container[index]
        except (IndexError, KeyError):
            return self.fillvalue

    def __len__(self) -> int:
        lengths = (len(v) for v in self.values)
        return min(lengths) if self.fillvalue is _NOTSET else max(lengths)


class ZipXComArg(XComArg):
    """``a.zip(b, ...)``: tuples of the elements, like ``zip`` (``zip_longest`` with a fillvalue)."""

    def __init__(self, args: Sequence[XComArg], *, fillvalue: Any = _NOTSET) -> None:
        if not args:
            raise ValueError("At least one input is required")
        self.args = list(args)
        self.fillvalue = fillvalue

    @property
    def operator(self) -> BaseOperator:  # type: ignore[override]
        return self.args[0].operator

    @property
    def key(self) -> str:  # type: ignore[override]
        return self.args[0].key

    def iter_references(self) -> Iterator[tuple[BaseOperator, str]]:
        for arg in self.args:
            yield from arg.iter_references()

    @property
    def roots(self) -> list[BaseOperator]:
        return [op for op, _ in self.iter_references()]

    leaves = roots

    def map_length(self, length_of: Callable[[XComArg], int | None]) -> int | None:
        lengths = [arg.map_length(length_of) for arg in self.args]
        if any(n is None for n in lengths):
            return None  # one input is not ready: neither is the zip
        return min(lengths) if self.fillvalue is _NOTSET else max(lengths)  # type: ignore[type-var]

    def resolve(self, context: dict[str, Any]) -> Any:
        values = [arg.resolve(context) for arg in self.args]
        for value in values:
            _check_sequence(value, "zip")
        return _ZipResult(values, self.fillvalue)

    def __repr__(self) -> str:
        first, *rest = (repr(a) for a in self.args)
        fill = "" if self.fillvalue is _NOTSET else f", fillvalue={self.fillvalue!r}"
        return f"{first}.zip({', '.join(rest)}{fill})"


class _ConcatResult(Sequence):
    def __init__(self, values: list[Sequence | dict]) -> None:
        self.values = values

    def __getitem__(self, index: Any) -> Any:
        i = index if index >= 0 else len(self) + index
        for value in self.values:
            if i < 0:
                break
            if i >= (length := len(value)):
                i -= length
            elif isinstance(value, Sequence):
                return value[i]
            else:
                return next(itertools.islice(iter(value), i, None))
        raise IndexError("list index out of range")

    def __len__(self) -> int:
        return sum(len(v) for v in self.values)


class ConcatXComArg(ZipXComArg):
    """``a.concat(b, ...)``: the elements of each in turn, like ``itertools.chain``."""

    def __init__(self, args: Sequence[XComArg]) -> None:
        super().__init__(args)

    def concat(self, *others: XComArg) -> ConcatXComArg:
        return ConcatXComArg([*self.args, *others])

    def map_length(self, length_of: Callable[[XComArg], int | None]) -> int | None:
        lengths = [arg.map_length(length_of) for arg in self.args]
        return None if any(n is None for n in lengths) else sum(lengths)  # type: ignore[arg-type]

    def resolve(self, context: dict[str, Any]) -> Any:
        values = [arg.resolve(context) for arg in self.args]
        for value in values:
            _check_sequence(value, "concat")
        return _ConcatResult(values)

    def __repr__(self) -> str:
        first, *rest = (repr(a) for a in self.args)
        return f"{first}.concat({', '.join(rest)})"
