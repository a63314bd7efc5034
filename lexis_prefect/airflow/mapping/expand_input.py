"""What a mapped task expands over: Airflow 2.10's ``expandinput.py``.

``.expand(x=[1, 2], y=xcomarg)`` stores a :class:`DictOfListsExpandInput` (the cross product of
its values, the last argument varying fastest); ``.expand_kwargs(list_or_xcomarg)`` stores a
:class:`ListOfDictsExpandInput` (one dict of keyword arguments per map index). Lengths are known
at parse time for literals and at run time, once the upstream finished, for XComArgs; a
:class:`MappedArgument` stands for one argument of a mapped task group inside it.
"""

from __future__ import annotations

import collections.abc
import functools
import operator
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Union

if TYPE_CHECKING:
    from lexis_prefect.airflow.baseoperator import BaseOperator

#: ``length_of(xcomarg)``: the length a finished upstream recorded for it, None when not (yet) known.
LengthOf = Callable[[Any], "int | None"]


class NotFullyPopulated(RuntimeError):
    """A length depends on an upstream value that was never recorded (the upstream did not succeed)."""

    def __init__(self, missing: set[str]) -> None:
        self.missing = missing

    def __str__(self) -> str:
        keys = ", ".join(repr(k) for k in sorted(self.missing))
        return f"Failed to populate all mapping metadata; missing: {keys}"


def _is_xcomarg(value: Any) -> bool:
    from lexis_prefect.airflow.xcom_arg import XComArg

    return isinstance(value, XComArg)


def needs_run_time_resolution(value: Any) -> bool:
    return isinstance(value, MappedArgument) or _is_xcomarg(value)


def is_mappable(value: Any) -> bool:
    """What ``expand`` accepts for one argument: a literal list/dict, an XComArg, a MappedArgument."""
    return needs_run_time_resolution(value) or (
        isinstance(value, (Mapping, Sequence)) and not isinstance(value, (str, bytes))
    )


def iter_references(value: Any) -> Iterator[tuple[BaseOperator, str]]:
    """The (operator, key) pairs of every XComArg in ``value`` (lists and dicts walked)."""
    if isinstance(value, (MappedArgument,)) or _is_xcomarg(value):
        yield from value.iter_references()
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from iter_references(v)
    elif isinstance(value, (list, tuple, set)):
        for v in value:
            yield from iter_references(v)


class DictOfListsExpandInput(NamedTuple):
    """``expand(**kwargs)``: one map index per combination of the values (a cross product)."""

    value: dict[str, Any]

    def iter_references(self) -> Iterator[tuple[BaseOperator, str]]:
        for v in self.value.values():
            if needs_run_time_resolution(v):
                yield from v.iter_references()

    def parse_time_length(self) -> int | None:
        """The count when every value is a literal (None if one comes from an upstream)."""
        if any(needs_run_time_resolution(v) for v in self.value.values()):
            return None
        return functools.reduce(operator.mul, (len(v) for v in self.value.values()), 1) if self.value else 0

    def _lengths(self, length_of: LengthOf) -> dict[str, int]:
        lengths = {k: length_of(v) if needs_run_time_resolution(v) else len(v) for k, v in self.value.items()}
        missing = {k for k, n in lengths.items() if n is None}
        if missing:
            raise NotFullyPopulated(missing)
        return lengths  # type: ignore[return-value]

    def total_length(self, length_of: LengthOf) -> int:
        if not self.value:
            return 0
        return functools.reduce(operator.mul, self._lengths(length_of).values(), 1)

    def resolve(self, context: dict[str, Any], map_index: int, length_of: LengthOf) -> tuple[dict[str, Any], set[int]]:
        """The keyword arguments of ``map_index`` and the ids of the values that came from
        mapping (Airflow does not render those as templates)."""
        lengths = self._lengths(length_of)
        data: dict[str, Any] = {}
        for key, value in self.value.items():
            if needs_run_time_resolution(value):
                value = value.resolve(context)
            data[key] = _pick(value, self._index_for(key, map_index, lengths), map_index)
        literal = {k for k, v in self.value.items() if not needs_run_time_resolution(v)}
        return data, {id(v) for k, v in data.items() if k not in literal}

    def _index_for(self, key: str, index: int, lengths: dict[str, int]) -> int:
        """The position in ``key``'s values: the last argument varies fastest (Airflow's order)."""
        for mapped_key in reversed(self.value):
            length = lengths[mapped_key]
            if length < 1:
                raise RuntimeError(f"cannot expand field mapped to length {length!r}")
            if mapped_key == key:
                return index % length
            index //= length
        return -1


def _pick(value: Any, index: int, map_index: int) -> Any:
    if isinstance(value, collections.abc.Sequence):
        return value[index]
    if not isinstance(value, dict):
        raise TypeError(f"can't map over value of type {type(value)}")
    for i, item in enumerate(value.items()):
        if i == index:
            return item
    raise IndexError(f"index {map_index} is over mapped length")


def _describe_type(value: Any) -> str:
    return "None" if value is None else type(value).__name__


class ListOfDictsExpandInput(NamedTuple):
    """``expand_kwargs(value)``: map index ``i`` gets the keyword arguments ``value[i]``."""

    value: Any

    def iter_references(self) -> Iterator[tuple[BaseOperator, str]]:
        if _is_xcomarg(self.value):
            yield from self.value.iter_references()
        else:
            for item in self.value:
                if _is_xcomarg(item):
                    yield from item.iter_references()

    def parse_time_length(self) -> int | None:
        return len(self.value) if isinstance(self.value, collections.abc.Sized) else None

    def total_length(self, length_of: LengthOf) -> int:
        if isinstance(self.value, collections.abc.Sized):
            return len(self.value)
        length = length_of(self.value)
        if length is None:
            raise NotFullyPopulated({"expand_kwargs() argument"})
        return length

    def resolve(self, context: dict[str, Any], map_index: int, length_of: LengthOf) -> tuple[dict[str, Any], set[int]]:
        if isinstance(self.value, collections.abc.Sized):
            mapping = self.value[map_index]
            if not isinstance(mapping, collections.abc.Mapping):
                mapping = mapping.resolve(context)
        else:
            mappings = self.value.resolve(context)
            if not isinstance(mappings, collections.abc.Sequence):
                raise ValueError(f"expand_kwargs() expects a list[dict], not {_describe_type(mappings)}")
            mapping = mappings[map_index]
        if not isinstance(mapping, collections.abc.Mapping):
            raise ValueError(f"expand_kwargs() expects a list[dict], not list[{_describe_type(mapping)}]")
        for key in mapping:
            if not isinstance(key, str):
                raise ValueError(
                    f"expand_kwargs() input dict keys must all be str, but {key!r} is of type {_describe_type(key)}"
                )
        return dict(mapping), {id(v) for v in mapping.values() if needs_run_time_resolution(v)}


ExpandInput = Union[DictOfListsExpandInput, ListOfDictsExpandInput]


class MappedArgument:
    """One argument of a mapped task group, as its tasks see it: the value of their map index."""

    _airflow_resolvable = True  # templating resolves it like an XComArg

    def __init__(self, expand_input: ExpandInput, key: str, group: Any) -> None:
        self._input = expand_input
        self._key = key
        self._group = group

    def iter_references(self) -> Iterator[tuple[BaseOperator, str]]:
        yield from self._input.iter_references()

    def resolve(self, context: dict[str, Any]) -> Any:
        ti = context["ti"]
        data, _ = self._input.resolve(context, ti.map_index, ti.length_of)
        return data[self._key]

    def __repr__(self) -> str:
        return f"MappedArgument({self._key!r} of {self._group!r})"


def prevent_duplicates(kwargs1: Mapping[str, Any], kwargs2: Mapping[str, Any], *, fail_reason: str) -> None:
    """Airflow's check that an argument is not given both to ``partial`` and to ``expand``."""
    duplicated_keys = set(kwargs1).intersection(kwargs2)
    if not duplicated_keys:
        return
    if len(duplicated_keys) == 1:
        raise TypeError(f"{fail_reason} argument: {duplicated_keys.pop()}")
    duplicated_keys_display = ", ".join(sorted(duplicated_keys))
    raise TypeError(f"{fail_reason} arguments: {duplicated_keys_display}")


def ensure_xcomarg_return_value(arg: Any) -> None:
    """Only a task's return value can be mapped over, not an XCom pushed under another key."""
    from lexis_prefect.airflow.xcom_arg import XCOM_RETURN_KEY

    for op, key in iter_references(arg):
        if key != XCOM_RETURN_KEY:
            raise ValueError(f"cannot map over XCom with custom key {key!r} from {op}")
