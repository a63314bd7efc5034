"""``XComArg``: a reference to a task's XCom, resolved when a downstream task runs.

``op.output``, the value a TaskFlow ``@task`` call returns, and ``value["key"]`` are XComArgs.
Used in another operator's templated arguments they make that task downstream (at construction,
as in Airflow) and are replaced by the pulled value right before ``execute``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lexis_prefect.airflow.baseoperator import DependencyMixin
from lexis_prefect.airflow.exceptions import XComNotFound
from lexis_prefect.airflow.setup_teardown import XComArgSetupTeardownMixin

if TYPE_CHECKING:
    from lexis_prefect.airflow.baseoperator import BaseOperator

XCOM_RETURN_KEY = "return_value"
_MISSING = object()


class XComArg(DependencyMixin, XComArgSetupTeardownMixin):
    """The XCom ``key`` of ``operator`` (its return value by default)."""

    #: Rendering replaces it by ``resolve(context)`` (Airflow's ResolveMixin; ``DagParam`` too).
    _airflow_resolvable = True

    def __init__(self, operator: BaseOperator, key: str = XCOM_RETURN_KEY) -> None:
        self.operator = operator
        self.key = key

    def __getitem__(self, key: str) -> XComArg:
        """``result["x"]``: the ``x`` XCom of a ``multiple_outputs`` task."""
        return XComArg(self.operator, key)

    def __iter__(self) -> Any:
        raise TypeError("'XComArg' object is not iterable")

    @property
    def roots(self) -> list[BaseOperator]:
        return [self.operator]

    # -- dynamic task mapping (lexis_prefect.airflow.mapping) ----------------------------------
    def iter_references(self) -> Any:
        """The (operator, key) pairs this argument pulls."""
        yield self.operator, self.key

    def map(self, f: Any) -> Any:
        """``xcomarg.map(f)``: each element passed through ``f`` when a mapped task reads it."""
        from lexis_prefect.airflow.mapping.xcom_args import MapXComArg

        self._check_return_key("map against")
        return MapXComArg(self, [f])

    def zip(self, *others: XComArg, **fillvalue: Any) -> Any:
        """``a.zip(b, c, fillvalue=...)``: tuples of their elements, as the built-in ``zip``."""
        from lexis_prefect.airflow.mapping.xcom_args import ZipXComArg

        self._check_return_key("map against")
        return ZipXComArg([self, *others], **fillvalue)

    def concat(self, *others: XComArg) -> Any:
        """``a.concat(b)``: the elements of each in turn."""
        from lexis_prefect.airflow.mapping.xcom_args import ConcatXComArg

        self._check_return_key("concatenate")
        return ConcatXComArg([self, *others])

    def _check_return_key(self, what: str) -> None:
        if self.key != XCOM_RETURN_KEY:
            raise ValueError(f"cannot {what} non-return XCom")

    def map_length(self, length_of: Any) -> int | None:
        """How many map indexes this value gives a downstream (None while it is not known)."""
        return length_of(self)

    leaves = roots

    def set_upstream(self, other: Any) -> None:
        self.operator.set_upstream(other)

    def set_downstream(self, other: Any) -> None:
        self.operator.set_downstream(other)

    def resolve(self, context: dict[str, Any]) -> Any:
        ti = context["ti"]
        map_indexes = ti.get_relevant_upstream_map_indexes(self.operator)  # inside a mapped group
        value = ti.xcom_pull(task_ids=self.operator.task_id, key=self.key, default=_MISSING, map_indexes=map_indexes)
        if value is _MISSING and (self.key == XCOM_RETURN_KEY or getattr(self.operator, "multiple_outputs", False)):
            return None  # Airflow 2.10: a task that returned None pushed nothing; its XComArg is None
        if value is _MISSING:
            raise XComNotFound(
                f'XComArg result from {self.operator.task_id} at {context["dag"].dag_id} with key="{self.key}" is not found!'
            )
        return value

    def __repr__(self) -> str:
        return f"XComArg({self.operator!r}, key={self.key!r})"

    def __str__(self) -> str:
        """A template that pulls the value, so an XComArg formatted into a string still works."""
        task_id, key = self.operator.task_id, self.key
        return f"{{{{ task_instance.xcom_pull(task_ids='{task_id}', dag_id='{self.operator.dag_id}', key='{key}') }}}}"


def _iter_xcomargs(value: Any, seen: set[int]) -> Any:
    if id(value) in seen:
        return
    if isinstance(value, XComArg) or getattr(value, "iter_references", None) is not None:
        yield value  # an XComArg, or a mapped task group's argument (pulls its group's input)
    elif isinstance(value, (list, tuple, set)):
        for v in value:
            yield from _iter_xcomargs(v, seen)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _iter_xcomargs(v, seen)
    elif hasattr(value, "template_fields") and not isinstance(value, type):
        seen.add(id(value))
        for name in value.template_fields:
            yield from _iter_xcomargs(getattr(value, name, None), seen)


def set_xcomargs_dependencies(operator: BaseOperator) -> None:
    """Make every task whose XComArg appears in ``operator``'s templated arguments its upstream."""
    seen = {id(operator)}
    for name in operator.template_fields:
        for arg in _iter_xcomargs(getattr(operator, name, None), seen):
            for upstream, _ in arg.iter_references():  # a zip or concat pulls several tasks
                operator.set_upstream(upstream)
