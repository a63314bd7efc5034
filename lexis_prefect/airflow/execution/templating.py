"""Jinja rendering of ``template_fields``, as Airflow 2.10 does it.

The environment is Airflow's: ``NativeEnvironment`` when the DAG sets
``render_template_as_native_obj`` (a single string result goes through ``ast.literal_eval``, so a
token ``"12345"`` arrives as the int ``12345``, ``"True"`` as a bool), else a sandboxed one that
renders to str; ``StrictUndefined`` unless the DAG says otherwise; the ``do`` extension; the DAG
folder and ``template_searchpath`` on the loader; the ``ds``/``ts`` filters; the DAG's
``user_defined_macros`` and ``user_defined_filters``. Rendering recurses into lists, tuples,
named tuples, dicts (values only) and sets, resolves ``XComArg``\\s, and renders the
``template_fields`` of nested objects; falsy values are left as they are.
"""

from __future__ import annotations

import copy
import datetime as _dt
import json
import random
import time
import types
import uuid
from typing import TYPE_CHECKING, Any

import jinja2
import jinja2.nativetypes
import jinja2.sandbox

if TYPE_CHECKING:
    from lexis_prefect.airflow.baseoperator import BaseOperator
    from lexis_prefect.airflow.dag import DAG


def _date_filter(fmt: str) -> Any:
    return lambda value: None if value is None else value.strftime(fmt)


FILTERS = {
    "ds": _date_filter("%Y-%m-%d"),
    "ds_nodash": _date_filter("%Y%m%d"),
    "ts": lambda value: None if value is None else value.isoformat(),
    "ts_nodash": _date_filter("%Y%m%dT%H%M%S"),
    "ts_nodash_with_tz": lambda value: None if value is None else value.isoformat().replace("-", "").replace(":", ""),
}


class _AirflowEnvironmentMixin:
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filters.update(FILTERS)  # type: ignore[attr-defined]

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        """Airflow allows ``_private`` attributes, only ``__dunder__`` ones are blocked."""
        return not jinja2.sandbox.is_internal_attribute(obj, attr)


class NativeEnvironment(_AirflowEnvironmentMixin, jinja2.nativetypes.NativeEnvironment):
    """Renders to Python objects (``render_template_as_native_obj=True``)."""


class SandboxedEnvironment(_AirflowEnvironmentMixin, jinja2.sandbox.SandboxedEnvironment):
    """Renders to str (Airflow's default)."""


def template_env(dag: DAG) -> jinja2.Environment:
    """The DAG's Jinja environment (Airflow's ``DAG.get_template_env``)."""
    options: dict[str, Any] = {
        "loader": jinja2.FileSystemLoader([dag.folder, *dag.template_searchpath]),
        "undefined": dag.template_undefined,
        "extensions": ["jinja2.ext.do"],
        "cache_size": 0,
    }
    options.update(dag.jinja_environment_kwargs or {})
    env_class = NativeEnvironment if dag.render_template_as_native_obj else SandboxedEnvironment
    env = env_class(**options)
    env.globals.update(dag.user_defined_macros or {})
    env.filters.update(dag.user_defined_filters or {})
    return env


def _render(template: jinja2.Template, context: dict[str, Any]) -> Any:
    """Render without copying the context into a dict more than once (Airflow's helper)."""
    context = copy.copy(context)
    env = template.environment
    if template.globals:
        context.update((k, v) for k, v in template.globals.items() if k not in context)
    try:
        nodes = template.root_render_func(env.context_class(env, context, template.name, template.blocks))
        if isinstance(env, jinja2.nativetypes.NativeEnvironment):
            return jinja2.nativetypes.native_concat(nodes)
        return "".join(nodes)
    except Exception:
        env.handle_exception()  # rewrites the traceback to point into the template


def render_template(
    operator: BaseOperator,
    value: Any,
    context: dict[str, Any],
    env: jinja2.Environment | None = None,
    seen: set[int] | None = None,
) -> Any:
    """``value`` with every template string in it rendered (see the module docstring)."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return value
    env = env or template_env(operator.dag)
    if isinstance(value, str):
        is_file = operator.template_ext and value.endswith(tuple(operator.template_ext))
        template = env.get_template(value) if is_file else env.from_string(value)
        return _render(template, context)
    if getattr(type(value), "_airflow_resolvable", False):
        return value.resolve(context)  # XComArg, DagParam (Airflow's ResolveMixin)
    if value.__class__ is tuple:
        return tuple(render_template(operator, v, context, env, seen) for v in value)
    if isinstance(value, tuple):  # named tuple
        return value.__class__(*(render_template(operator, v, context, env, seen) for v in value))
    if isinstance(value, list):
        return [render_template(operator, v, context, env, seen) for v in value]
    if isinstance(value, dict):
        return {k: render_template(operator, v, context, env, seen) for k, v in value.items()}
    if isinstance(value, set):
        return {render_template(operator, v, context, env, seen) for v in value}
    seen.add(id(value))
    _render_fields(operator, value, getattr(value, "template_fields", ()), context, env, seen)
    return value


def _render_fields(
    operator: BaseOperator,
    parent: Any,
    fields: Any,
    context: dict[str, Any],
    env: jinja2.Environment,
    seen: set[int],
) -> None:
    for name in fields:
        try:
            value = getattr(parent, name)
        except AttributeError:
            raise AttributeError(
                f"{name!r} is configured as a template field but {type(parent).__name__} does not have this attribute."
            ) from None
        try:
            if not value:
                continue
        except Exception:  # objects without __bool__ (DataFrames) are rendered anyway
            pass
        if callable(value) and not isinstance(value, type):
            rendered = value(context=context, jinja_env=env)
        else:
            rendered = render_template(operator, value, context, env, seen)
        setattr(parent, name, rendered)


def render_template_fields(
    operator: BaseOperator,
    context: dict[str, Any],
    env: jinja2.Environment | None = None,
    seen: set[int] | None = None,
) -> None:
    """Render ``operator.template_fields`` in place (call it on the execution copy); objects whose
    id is in ``seen`` (values a mapped task got from its expansion) are left as they are."""
    env = env or template_env(operator.dag)
    _render_fields(operator, operator, operator.template_fields, context, env, set(seen or ()))


def _ds_add(ds: str, days: int) -> str:
    if not days:
        return str(ds)
    return (_dt.datetime.strptime(str(ds), "%Y-%m-%d") + _dt.timedelta(days=days)).strftime("%Y-%m-%d")


def _ds_format(ds: str, input_format: str, output_format: str) -> str:
    return _dt.datetime.strptime(str(ds), input_format).strftime(output_format)


#: ``{{ macros.* }}``: the parts of ``airflow.macros`` that need no extra package.
macros = types.SimpleNamespace(
    datetime=_dt.datetime,
    timedelta=_dt.timedelta,
    json=json,
    time=time,
    uuid=uuid,
    random=random.random,
    ds_add=_ds_add,
    ds_format=_ds_format,
)
