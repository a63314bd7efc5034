"""Module attributes that load on first use (PEP 562), for packages imported at interpreter start.

The import hook imports ``lexis_prefect``, ``lexis_prefect.airflow`` and the ``airflow`` facade
packages at start-up or on ``import airflow``; their public names must not drag in Prefect,
httpx or pydantic until someone uses them. This module imports nothing itself.
"""


def lazy_getattr(namespace: dict, names: dict, missing: object = None) -> object:
    """A module ``__getattr__`` serving ``names`` (``name -> (module, attribute or None)``).

    ``attribute`` None serves the module itself. A loaded value is stored in ``namespace`` (the
    module's ``globals()``), so each name is looked up once. ``missing(name)``, if given, makes the
    exception raised for a name that cannot be served: one not in ``names`` (return None there
    for the plain AttributeError), or one whose module or attribute does not exist (yet).
    """
    module_name = namespace["__name__"]

    def __getattr__(name: str) -> object:
        if name not in names:
            error = missing(name) if missing is not None else None  # type: ignore[operator]
            raise error or AttributeError(f"module {module_name!r} has no attribute {name!r}")
        from importlib import import_module

        module, attribute = names[name]
        try:
            value = import_module(module) if attribute is None else getattr(import_module(module), attribute)
        except (ModuleNotFoundError, AttributeError) as exc:
            target = exc.name if isinstance(exc, ModuleNotFoundError) else attribute
            if missing is None or target not in (module, attribute):
                raise
            raise missing(name) from exc  # type: ignore[operator]
        namespace[name] = value
        return value

    return __getattr__
