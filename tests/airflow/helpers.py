"""Helpers shared by the shim's tests."""

from __future__ import annotations

from typing import Any


class Errors:
    """``on_failure_callback`` that keeps ``"<ExceptionClass>: <message>"`` per failed task.

    Not a dict subclass: an empty dict is falsy, and a falsy callback is not called (as in Airflow).
    Deep copies are the object itself: the DAG deep-copies its ``default_args``.
    """

    def __init__(self) -> None:
        self.seen: dict[str, str] = {}

    def __deepcopy__(self, memo: dict[int, Any]) -> Errors:
        return self

    def __call__(self, context: dict[str, Any]) -> None:
        exc = context["exception"]
        self.seen[context["ti"].task_id] = f"{type(exc).__name__}: {exc}"

    def __eq__(self, other: object) -> bool:
        return self.seen == other

    def __getitem__(self, task_id: str) -> str:
        return self.seen[task_id]

    def __contains__(self, task_id: str) -> bool:
        return task_id in self.seen

    def __repr__(self) -> str:
        return repr(self.seen)
