"""The import hook that serves ``airflow`` and ``lexis`` to unchanged Airflow DAG files.

A DAG file says ``from airflow import DAG`` and ``from lexis.operators.aai import ...``. Those
top-level names are served from the facade directory next to this file (``_facade/airflow``,
``_facade/lexis``): thin modules that mirror Airflow's module paths and re-export the shim's
objects. Only the two top-level names go through :class:`AirflowShimFinder`; their submodules
are then found the ordinary way, through the facade package's ``__path__``, and a submodule the
facade lacks (``airflow.providers...``) fails with a :class:`ModuleNotFoundError` that says so
and points to the coverage page, instead of a bare "No module named".

Two modes (``LEXIS_PREFECT_AIRFLOW``, read by :func:`install_from_env`; ``off`` installs nothing):

``fallback`` (default)
    a real installation wins: the finder first asks the other finders on ``sys.meta_path``
    and serves the shim only where none of them finds the name. As the one exception, a bare
    ``airflow`` directory without ``__init__.py`` (a namespace package, such as a project's
    ``airflow/`` folder in the working directory) does not count: Airflow itself always has an
    ``__init__.py``. A namespace ``lexis`` does count, as LEXIS code may be laid out so.
``force``
    the shim serves the names even where a real installation exists, and warns
    (:class:`ShimShadowsAirflowWarning`) naming the installation it hides. The
    ``lexis-prefect airflow`` CLI installs it so (``install(force=True)``): it runs the DAG on
    Prefect by definition.

The finder sits at the front of ``sys.meta_path`` in both modes (it consults the others
itself, so that a namespace ``airflow`` cannot hide it); for any other name it returns None at
once.

:func:`install_from_env` runs at every interpreter start (``lexis_prefect_airflow.pth``), so this
module imports nothing beyond ``os`` and ``sys`` at import time (``importlib.abc`` alone costs
~18 ms, through ``typing``): the finder is a plain class with ``find_spec``, which is all the
import system asks of a meta path finder; ``importlib.machinery`` is imported on the first
``airflow``/``lexis`` import.
"""

import os
import sys

ENV_VAR = "LEXIS_PREFECT_AIRFLOW"
MODES = ("fallback", "force", "off")
SERVED = ("airflow", "lexis")
FACADE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_facade")
COVERAGE_DOC = "docs/airflow-compat.md"

__all__ = [
    "COVERAGE_DOC",
    "ENV_VAR",
    "FACADE_DIR",
    "AirflowShimFinder",
    "ShimShadowsAirflowWarning",
    "describe",
    "env_mode",
    "install",
    "install_from_env",
    "installed",
    "serve_as",
    "serves",
    "uninstall",
    "unsupported_name",
]


class ShimShadowsAirflowWarning(UserWarning):
    """The shim was forced and hides a real ``airflow`` (or ``lexis``) installation."""


def _in_facade(entry: str) -> bool:
    return os.path.normcase(os.path.abspath(entry)).startswith(os.path.normcase(FACADE_DIR) + os.sep)


def _spec_in_facade(spec: object) -> bool:
    origin = getattr(spec, "origin", None)
    locations = getattr(spec, "submodule_search_locations", None) or ()
    return any(_in_facade(p) for p in ([origin] if origin else []) + list(locations))


class AirflowShimFinder:
    """Meta path finder for the top-level names ``airflow`` and ``lexis`` (see the module doc).

    It implements the ``importlib.abc.MetaPathFinder`` protocol without subclassing it, to keep
    interpreter start cheap.
    """

    _lexis_prefect_airflow_shim = True  # recognised by install(), also across reloads

    def __init__(self) -> None:
        self.forced = False
        self._warned: set[str] = set()
        self._busy: set[str] = set()

    def __repr__(self) -> str:
        return f"<AirflowShimFinder {'force' if self.forced else 'fallback'} {FACADE_DIR}>"

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> object:
        top, dot, _ = fullname.partition(".")
        if top not in SERVED:
            return None
        if not dot:
            if path is not None:  # an explicit search of other directories, not an import
                return None
            return self._top_spec(fullname, warn=True)
        # A submodule: ours only when its parent is a facade package.
        entries = list(path) if path is not None else []  # type: ignore[call-overload]
        if not entries or not all(isinstance(p, str) and _in_facade(p) for p in entries):
            return None
        from importlib.machinery import PathFinder

        spec = PathFinder.find_spec(fullname, entries)
        if spec is None:
            raise ModuleNotFoundError(_missing_message(fullname), name=fullname)
        return spec

    def invalidate_caches(self) -> None:
        pass

    def _top_spec(self, name: str, *, warn: bool) -> object:
        """The facade's spec for ``name``, or None where a real installation wins."""
        if name in self._busy:  # another finder asked for the name while we asked it
            return None
        if not self.forced and _real_spec(name, self) is not None:
            return None  # the import system goes on to the finder that found it
        if warn and self.forced and name not in self._warned:
            self._warned.add(name)
            try:
                real = _real_spec(name, self)
            except Exception:  # a broken third-party finder must not break the import
                real = None
            if real is not None:
                import warnings

                warnings.warn(
                    f"{name!r} is served by the lexis-prefect Airflow shim ({ENV_VAR}=force or "
                    f"the lexis-prefect airflow CLI), not by the installation at "
                    f"{_where(real)}, which this process does not use.",
                    ShimShadowsAirflowWarning,
                    stacklevel=3,  # past find_spec (importlib frames are skipped) to the import line
                )
        from importlib.machinery import PathFinder

        return PathFinder.find_spec(name, [FACADE_DIR])


def _missing_message(fullname: str) -> str:
    top = fullname.partition(".")[0]
    what = "Airflow" if top == "airflow" else "LEXIS Airflow operator"
    return (
        f"No module named {fullname!r}: {top!r} is served here by the lexis-prefect Airflow shim, "
        f"which does not provide this {what} module. The modules and names it covers are listed "
        f"in {COVERAGE_DOC}."
    )


def serve_as(namespace: dict, source: str) -> None:
    """Fill the facade module ``namespace`` with the public names of the facade module ``source``.

    Airflow 3 moved modules (``airflow.operators.python`` is now
    ``airflow.providers.standard.operators.python``, ``airflow.exceptions`` is
    ``airflow.sdk.exceptions``); the new path serves what the old one serves, so both grow
    together. Where the old path is not served either, importing the new one fails naming it.
    """
    import importlib

    name = namespace["__name__"]
    try:
        module = importlib.import_module(source)
    except ModuleNotFoundError as exc:
        if not exc.name or not (source == exc.name or source.startswith(exc.name + ".")):
            raise  # something the served module imports is missing: not ours to rename
        raise ModuleNotFoundError(_missing_message(name), name=name) from None
    names = list(getattr(module, "__all__", None) or [n for n in vars(module) if not n.startswith("_")])
    namespace.update({n: getattr(module, n) for n in names})
    namespace["__all__"] = names


def unsupported_name(module: str, name: str, feature: str | None) -> ImportError | None:
    """The error for ``from <module> import <name>`` where the shim lacks the name (None: not a
    name of Airflow's module, the plain AttributeError). Raised from the facade's ``__getattr__``:
    an ImportError goes through ``from ... import`` unchanged, naming the feature."""
    if feature is None:
        return None
    return ImportError(
        f"cannot import name {name!r} from {module!r}: {feature} is not provided by the "
        f"lexis-prefect Airflow shim. The modules and names it covers are listed in {COVERAGE_DOC}.",
        name=module,
    )


def _real_spec(name: str, shim: AirflowShimFinder) -> object:
    """What the other finders give for ``name`` if it counts as an installation, else None."""
    shim._busy.add(name)
    try:
        for finder in list(sys.meta_path):
            find_spec = getattr(finder, "find_spec", None)
            if _ours(finder) or find_spec is None:
                continue
            spec = find_spec(name, None)
            if spec is None:
                continue
            if name == "airflow" and not getattr(spec, "has_location", False):
                return None  # a bare airflow/ directory (namespace package): not Airflow
            return spec
        return None
    finally:
        shim._busy.discard(name)


def _where(spec: object) -> str:
    origin = getattr(spec, "origin", None)
    if origin and getattr(spec, "has_location", False):
        return str(origin)
    return str(list(getattr(spec, "submodule_search_locations", None) or []) or spec)


def _ours(finder: object) -> bool:
    return getattr(finder, "_lexis_prefect_airflow_shim", False)


_FINDER = AirflowShimFinder()


def installed() -> AirflowShimFinder | None:
    """The shim's finder if it is on ``sys.meta_path``."""
    for finder in sys.meta_path:
        if _ours(finder):
            return finder  # type: ignore[return-value]
    return None


def install(force: bool = False) -> AirflowShimFinder:
    """Put the shim's finder at the front of ``sys.meta_path``; idempotent.

    ``force=False``: fallback mode (a real ``airflow``/``lexis`` wins), unless the finder is
    already forced: a forced finder is never demoted. ``force=True``: the shim serves the names
    even over a real installation, and warns at the import that it hides one. Forcing after a
    real ``airflow`` was imported cannot replace that module in this process: it warns so.
    """
    finder = installed()
    if finder is None:
        finder = _FINDER
        sys.meta_path.insert(0, finder)
    if force and not finder.forced:
        finder.forced = True
        for name in SERVED:
            module = sys.modules.get(name)
            spec = getattr(module, "__spec__", None)
            if module is not None and not _spec_in_facade(spec):
                import warnings

                warnings.warn(
                    f"{name!r} was already imported from {getattr(module, '__file__', None) or spec}; "
                    "forcing the lexis-prefect Airflow shim cannot replace it in this process.",
                    ShimShadowsAirflowWarning,
                    stacklevel=2,
                )
    return finder


def uninstall() -> None:
    """Take the finder off ``sys.meta_path`` (modules already imported stay imported)."""
    sys.meta_path[:] = [f for f in sys.meta_path if not _ours(f)]
    _FINDER.forced = False
    _FINDER._warned.clear()


def env_mode() -> str:
    """``LEXIS_PREFECT_AIRFLOW``: ``fallback`` (unset or empty), ``force`` or ``off``."""
    raw = os.environ.get(ENV_VAR, "")
    mode = raw.strip().lower() or "fallback"
    if mode not in MODES:
        import warnings

        warnings.warn(
            f"{ENV_VAR}={raw!r} is not one of {', '.join(MODES)}; using 'fallback'.",
            RuntimeWarning,
            stacklevel=2,
        )
        mode = "fallback"
    return mode


def install_from_env() -> AirflowShimFinder | None:
    """Install as ``LEXIS_PREFECT_AIRFLOW`` says; run at interpreter start by the ``.pth`` file."""
    mode = env_mode()
    if mode == "off":
        return None
    return install(force=mode == "force")


def _resolve(name: str) -> tuple[object, bool]:
    """(spec, served by the shim) of what ``import name`` gives now, without importing it."""
    module = sys.modules.get(name)
    if module is not None:
        spec = getattr(module, "__spec__", None)
        return spec, _spec_in_facade(spec)
    for finder in list(sys.meta_path):
        if _ours(finder):
            spec = finder._top_spec(name, warn=False) if name in SERVED else None  # type: ignore[attr-defined]
            if spec is not None:
                return spec, True
            continue
        find_spec = getattr(finder, "find_spec", None)
        spec = find_spec(name, None) if find_spec is not None else None
        if spec is not None:
            return spec, False
    return None, False


def serves(name: str = "airflow") -> bool:
    """Whether ``import airflow`` (or ``lexis``) gives the shim's facade in this process."""
    return _resolve(name)[1]


def describe(name: str = "airflow") -> str:
    """One line for humans (the CLI): where ``import name`` resolves, and why."""
    spec, ours = _resolve(name)
    finder = installed()
    if ours:
        forced = finder is not None and finder.forced
        text = f"{name}: lexis-prefect Airflow shim ({'force' if forced else 'fallback'} mode; {FACADE_DIR})"
        real = _real_spec(name, finder) if finder is not None and forced else None
        if real is not None:
            text += f"; hides the installation at {_where(real)}"
        return text
    if spec is not None:
        return (
            f"{name}: {_where(spec)} (not the lexis-prefect shim: an installed {name} wins in "
            f"fallback mode; {ENV_VAR}=force or install(force=True) serves the shim)"
        )
    why = f"{ENV_VAR}={env_mode()}" if finder is None else "the hook is installed but found no facade"
    return f"{name}: not importable (the lexis-prefect Airflow shim is not installed: {why})"
