"""Drive the Prefect UI in headless Chromium (Debian's package) with Playwright, for deployment tests.

Playwright's own browser downloads are never used: Chromium is the system one (`chromium_path()`),
started with the flags a closed network needs and a fresh profile.

Prefect 3.9 serves two UIs from one server: the Vue UI ("v1") at the root and the React UI ("v2")
under `/v2`. A browser opening the bare server URL is redirected to `/v2`, deep links such as
`/runs/flow-run/<id>` stay on v1. The helpers here work with both: pass `ui_url` as
`http://host:port` (v1) or `http://host:port/v2` (v2); the routes below the base are the same.

    async with chromium_page() as page:
        text = await open_flow_run(page, ui_url, run_id, output_dir(), expect_text="Job summary")
        form = await open_run_form(page, ui_url, deployment_id, output_dir())
        assert form.values["job1.requirements.job_name"] == "My HPC Job"

The Prefect server's UI must know where its API is: `prefect server start --port P` alone leaves
the UI calling port 4200. Start it with `PREFECT_SERVER_UI_API_URL=http://127.0.0.1:P/api` (or
`PREFECT_SERVER_API_PORT=P`); a page that cannot reach the API raises `PrefectUIError` saying so.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # playwright is a test extra: importing this module must not need it
    from playwright.async_api import Locator, Page

__all__ = [
    "CHROMIUM_ARGS",
    "ChromiumNotFound",
    "PrefectUIError",
    "RunForm",
    "chromium_page",
    "chromium_path",
    "open_flow_run",
    "open_run_form",
    "output_dir",
    "save_screenshot",
]

REPO = Path(__file__).resolve().parents[2]

ENV_CHROMIUM = "LEXIS_PREFECT_CHROMIUM"
ENV_OUTPUT = "LEXIS_PREFECT_TEST_OUTPUT"
DEFAULT_CHROMIUM = "/usr/bin/chromium"

#: Without the background-networking flags, Chromium's own traffic (component updates, sync,
#: QUIC probes) is refused by a closed network, and pages fail to load.
CHROMIUM_ARGS: tuple[str, ...] = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

DEFAULT_VIEWPORT = {"width": 1400, "height": 1000}
#: Full-page screenshots grow the viewport to the content's height, at most this tall.
MAX_SCREENSHOT_HEIGHT = 16000

#: What v1 and v2 show when the page cannot reach the API that `/ui-settings` names.
API_ERRORS = ("Can't connect to Server API", "Unable to connect to Prefect server")
#: Submits of the run form when the server answers 503 (see `RunForm.submit`).
SUBMIT_ATTEMPTS = 3


class ChromiumNotFound(RuntimeError):
    """No Chromium executable to drive."""


class PrefectUIError(AssertionError):
    """The Prefect UI did not show what a helper waited for."""


def chromium_path() -> str:
    """The Chromium executable: `$LEXIS_PREFECT_CHROMIUM`, else /usr/bin/chromium, else `chromium` on PATH."""
    configured = os.environ.get(ENV_CHROMIUM)
    if configured:
        if os.path.isfile(configured) and os.access(configured, os.X_OK):
            return configured
        raise ChromiumNotFound(f"{ENV_CHROMIUM}={configured!r} is not an executable file")
    if os.access(DEFAULT_CHROMIUM, os.X_OK):
        return DEFAULT_CHROMIUM
    found = shutil.which("chromium")
    if found:
        return found
    raise ChromiumNotFound(
        f"Chromium not found at {DEFAULT_CHROMIUM} nor on PATH: install Debian's package with "
        f"`apt-get install chromium`, or point {ENV_CHROMIUM} at a Chromium executable"
    )


def output_dir(*parts: str) -> Path:
    """Where screenshots go (created): `$LEXIS_PREFECT_TEST_OUTPUT`, else `<repo>/test-output/ui`, plus `parts`."""
    base = os.environ.get(ENV_OUTPUT)
    path = Path(base) if base else REPO / "test-output" / "ui"
    path = path.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


@asynccontextmanager
async def chromium_page(
    *, viewport: dict[str, int] | None = None, timeout_s: float = 30.0, executable: str | None = None
) -> AsyncIterator[Page]:
    """A page of a headless Chromium with a fresh profile, closed (and the profile removed) on exit.

    Raises:
        ChromiumNotFound: no Chromium (see `chromium_path`).
    """
    from playwright.async_api import async_playwright

    executable = executable or chromium_path()
    with tempfile.TemporaryDirectory(prefix="lexis-prefect-chromium-") as profile:
        async with async_playwright() as playwright:
            context = await playwright.chromium.launch_persistent_context(
                profile,
                executable_path=executable,
                headless=True,
                args=list(CHROMIUM_ARGS),
                viewport=dict(viewport or DEFAULT_VIEWPORT),
            )
            try:
                context.set_default_timeout(timeout_s * 1000)
                page = context.pages[0] if context.pages else await context.new_page()
                yield page
            finally:
                await context.close()


# -- screenshots ---------------------------------------------------------------------------------

#: How much taller than the viewport the page's content is, counting inner scroll containers
#: (the v1 UI scrolls `.app-router-view`, not the document, so `full_page` alone misses it).
_OVERFLOW_JS = """() => {
  let extra = Math.max(0, document.documentElement.scrollHeight - window.innerHeight);
  for (const el of document.querySelectorAll('*')) {
    const style = getComputedStyle(el);
    if (['auto', 'scroll'].includes(style.overflowY) && el.clientHeight > 0)
      extra = Math.max(extra, el.scrollHeight - el.clientHeight);
  }
  return extra;
}"""


async def save_screenshot(page: Page, path: Path) -> Path:
    """A screenshot of the whole page, inner scroll containers unrolled; returns `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    viewport = page.viewport_size or DEFAULT_VIEWPORT
    extra = int(await page.evaluate(_OVERFLOW_JS))
    if extra > 0:
        height = min(viewport["height"] + extra, MAX_SCREENSHOT_HEIGHT)
        await page.set_viewport_size({"width": viewport["width"], "height": height})
        await page.wait_for_timeout(300)  # let the layout (and virtual scrollers) follow
    try:
        await page.screenshot(path=str(path), full_page=True)
    finally:
        if extra > 0:
            await page.set_viewport_size(dict(viewport))
    return path


async def body_text(page: Page) -> str:
    """The page's visible text (`document.body.innerText`)."""
    return await page.evaluate("() => document.body ? document.body.innerText : ''")


# -- waiting -------------------------------------------------------------------------------------


async def _wait_ready(page: Page, predicate_js: str, arg: Any, what: str, out: Path, timeout_s: float) -> None:
    """Wait until `predicate_js(arg)` is true in the page; fail early if the UI reports no API."""
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    js = f"""(arg) => {{
      const text = document.body ? document.body.innerText : '';
      if ({json.dumps(API_ERRORS)}.some(e => text.includes(e))) return 'api-error';
      return ({predicate_js})(arg) ? 'ok' : false;
    }}"""
    try:
        handle = await page.wait_for_function(js, arg=arg, timeout=timeout_s * 1000, polling=200)
        outcome = await handle.json_value()
    except PlaywrightTimeout:
        outcome = "timeout"
    if outcome == "ok":
        return
    await save_screenshot(page, out)
    text = await body_text(page)
    if outcome == "api-error":
        line = next((ln for ln in text.splitlines() if any(e in ln for e in API_ERRORS)), API_ERRORS[0])
        raise PrefectUIError(
            f"{page.url}: the UI cannot reach the Prefect API ({line.strip()}). Start the server with "
            f"PREFECT_SERVER_UI_API_URL=http://<host>:<port>/api (`--port` alone leaves the UI on :4200). "
            f"Screenshot: {out}"
        )
    raise PrefectUIError(
        f"{page.url}: {what} did not appear within {timeout_s:g}s. Screenshot: {out}\n"
        f"Visible text:\n{text[:3000]}"
    )


_TEXT_JS = "(t) => document.body.innerText.includes(t)"

#: The flow run page has rendered its tabs (v1: `li.p-tab`, v2: `button[role=tab]`, both in a tablist).
_FLOW_RUN_TABS_JS = """() => [...document.querySelectorAll('[role=tablist] *')]
  .some(e => e.children.length === 0 && e.textContent.trim() === 'Artifacts')"""


def _short(identifier: Any) -> str:
    return str(identifier).replace("-", "")[:8]


# -- the flow run page ---------------------------------------------------------------------------


async def open_flow_run(
    page: Page,
    ui_url: str,
    flow_run_id: Any,
    out_dir: Path,
    *,
    expect_text: str | None = None,
    artifact_key: str | None = None,
    expect_state: str | None = None,
    timeout_s: float = 30.0,
) -> str:
    """Open a flow run's page and return its visible text, after finding `expect_text` on it or in its artifacts.

    Steps: `{ui_url}/runs/flow-run/{id}`, wait until its tabs render (and, with `expect_state`,
    e.g. "Completed", until that state shows); unless `expect_text` is already on that first
    view, open the Artifacts tab. Prefect (v1 and v2) lists artifacts there as cards without
    their content, so then follow the artifact cards (only the one titled `artifact_key`, if
    given) to the artifact's own page until `expect_text` shows.

    Screenshots: `out_dir/flow-run-<short id>.png` (the run page, on its Artifacts tab if opened)
    and, when an artifact page was needed, `out_dir/flow-run-<short id>-artifact.png`.

    Returns:
        The flow run page's `document.body.innerText`, followed (after a blank line) by the
        artifact page's when one was opened, so that the state and the artifact text are both there.

    Raises:
        PrefectUIError: the page, the tab or the text did not appear (a `-failed.png` screenshot is saved).
    """
    short = _short(flow_run_id)
    base = ui_url.rstrip("/")
    shot = out_dir / f"flow-run-{short}.png"
    failed = out_dir / f"flow-run-{short}-failed.png"
    await page.goto(f"{base}/runs/flow-run/{flow_run_id}")
    await _wait_ready(page, _FLOW_RUN_TABS_JS, None, "the flow run page's tabs", failed, timeout_s)
    if expect_state is not None:
        await _wait_ready(page, _TEXT_JS, expect_state, f"the state {expect_state!r}", failed, timeout_s)

    if expect_text is None or expect_text not in await body_text(page):
        tab = page.locator("[role=tablist]").get_by_text("Artifacts", exact=True).first
        await tab.click()
        # The tab's content: artifact cards (links to the artifact pages), or an empty state.
        await _wait_ready(
            page,
            """() => document.querySelector('a[href*="/artifacts/artifact/"]')
                     || /no artifacts|did not produce any artifacts/i.test(document.body.innerText)""",
            None,
            "the Artifacts tab's content",
            failed,
            timeout_s,
        )
    run_text = await body_text(page)
    await save_screenshot(page, shot)
    if expect_text is None or expect_text in run_text:
        return run_text

    links = page.locator('a[href*="/artifacts/artifact/"]')
    if artifact_key is not None:
        links = links.filter(has_text=artifact_key)
    hrefs = [h for h in [await link.get_attribute("href") for link in await links.all()] if h]
    if not hrefs:
        await save_screenshot(page, failed)
        which = f"titled {artifact_key!r} " if artifact_key else ""
        raise PrefectUIError(
            f"{page.url}: no artifact {which}on the Artifacts tab, and {expect_text!r} is not on the page. "
            f"Screenshot: {failed}\nVisible text:\n{run_text[:3000]}"
        )
    for number, href in enumerate(hrefs):
        await page.goto(href if href.startswith("http") else _origin(page.url) + href)
        last = number == len(hrefs) - 1
        try:
            await _wait_ready(page, _TEXT_JS, expect_text, repr(expect_text), failed, timeout_s if last else 5)
        except PrefectUIError:
            if last:
                raise
            continue
        await save_screenshot(page, out_dir / f"flow-run-{short}-artifact.png")
        return f"{run_text}\n\n{await body_text(page)}"
    raise AssertionError("unreachable")


def _origin(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


# -- the deployment's run form -------------------------------------------------------------------

#: Finds a parameter's field by the chain of labels the schema form shows, and marks it.
#: v1 (Vue): `.schema-form-property` > header `.schema-form-property__label`, body `fieldset`;
#: v2 (React): `label[data-slot=label]` next to a `fieldset`. In both a property's own fieldset is
#: the first fieldset of its nearest ancestor that has one not containing the label.
_RESOLVE_JS = """([segments, mark]) => {
  const LABELS = '.schema-form-property__label, label[data-slot="label"]';
  const norm = s => s.replace(/\\s+/g, ' ').trim().replace(/ \\(Optional\\)$/, '').toLowerCase();
  const fieldsetDepth = el => { let d = 0; for (let a = el.parentElement; a; a = a.parentElement) if (a.tagName === 'FIELDSET') d++; return d; };
  const ownFieldset = label => {
    for (let a = label.parentElement; a; a = a.parentElement) {
      const f = [...a.querySelectorAll('fieldset')].find(f => !f.contains(label));
      if (f) return f;
    }
    return null;
  };
  let scope = document.body;
  for (let i = 0; i < segments.length; i++) {
    const labels = [...scope.querySelectorAll(LABELS)];
    const matching = labels.filter(l => segments[i].includes(norm(l.textContent)));
    if (!matching.length)
      return {ok: false, depth: i, seen: [...new Set(labels.map(l => norm(l.textContent)))].slice(0, 60)};
    // The shallowest match is the property itself, not a same-titled field further down.
    const label = matching.reduce((best, l) => fieldsetDepth(l) < fieldsetDepth(best) ? l : best);
    const fieldset = ownFieldset(label);
    if (!fieldset) return {ok: false, depth: i, seen: []};
    fieldset.setAttribute('data-lexis-field', mark.slice(0, i + 1).join('.'));
    scope = fieldset;
  }
  const control = scope.querySelector(
    'textarea, input:not([type=search]):not([type=hidden]), select, button[aria-haspopup=listbox], ' +
    '.p-select-button__control, [contenteditable=true]');
  if (control) control.setAttribute('data-lexis-path', mark.join('.'));
  return {ok: true, control: !!control, depth: segments.length};
}"""

#: A usable form: the Submit button and at least one parameter label.
_FORM_READY_JS = """(names) => {
  const LABELS = '.schema-form-property__label, label[data-slot="label"]';
  const norm = s => s.replace(/\\s+/g, ' ').trim().replace(/ \\(Optional\\)$/, '').toLowerCase();
  const submit = [...document.querySelectorAll('button')].some(b => b.textContent.trim() === 'Submit');
  const labels = [...document.querySelectorAll(LABELS)].map(l => norm(l.textContent));
  return submit && (names.length === 0 ? labels.length > 0 : names.some(n => labels.includes(n)));
}"""


def _resolve_ref(node: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    """`node` with a `$ref` (or a single-item `allOf`) replaced by its definition, keys of `node` kept."""
    for _ in range(10):
        ref = node.get("$ref")
        if not ref and len(node.get("allOf") or []) == 1:
            ref = node["allOf"][0].get("$ref")
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return node
        target = definitions.get(ref.rsplit("/", 1)[-1], {})
        node = {**target, **{k: v for k, v in node.items() if k not in ("$ref", "allOf")}}
    return node


def _branches(node: dict[str, Any], definitions: dict[str, Any]) -> list[dict[str, Any]]:
    """The non-null `anyOf` branches of `node`, resolved."""
    out = []
    for branch in node.get("anyOf") or []:
        if branch.get("type") != "null":
            out.append(_resolve_ref(branch, definitions))
    return out


def field_labels(schema: dict[str, Any], path: str) -> list[list[str]]:
    """For each key of a dotted parameter path, the labels the UI may show for it.

    A property is labelled by its `title`; pydantic gives a model-typed property none, and then v1
    shows the key title-cased ("Requirements") and v2 the model's title ("JobRequirements"). The
    key itself is accepted too; the page compares case-insensitively.
    """
    definitions = {**(schema.get("$defs") or {}), **(schema.get("definitions") or {})}
    node: dict[str, Any] = schema
    out: list[list[str]] = []
    for key in path.split("."):
        container = _resolve_ref(node, definitions)
        if "properties" not in container:
            container = next((b for b in _branches(container, definitions) if "properties" in b), container)
        prop = (container.get("properties") or {}).get(key, {})
        names = {key, key.replace("_", " ").title()}  # v1 titles an untitled property from its key
        if prop.get("title"):
            names.add(prop["title"])
        target = _resolve_ref(prop, definitions)
        for candidate in [target, *_branches(target, definitions)]:
            if candidate.get("title"):
                names.add(candidate["title"])
        out.append(sorted(names))
        node = target
    return out


@dataclass
class RunForm:
    """The deployment's custom run form, opened by `open_run_form`."""

    page: Page
    deployment: dict[str, Any]
    text: str
    fields: dict[str, Locator] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)
    screenshot: Path | None = None

    @property
    def schema(self) -> dict[str, Any]:
        return self.deployment.get("parameter_openapi_schema") or {}

    async def locate(self, path: str, *, timeout_s: float = 5.0) -> Locator:
        """The input of a dotted parameter path (`job1.requirements.job_name`), marked `data-lexis-path`.

        A textarea/input for text and numbers, the select button for a block parameter. An
        optional property (`anyOf` with null) left on its "None" choice is switched to its other
        branch first, at any level of the path.
        """
        labels = [[n.lower() for n in names] for names in field_labels(self.schema, path)]
        segments = path.split(".")
        expansions = 0
        deadline = time.monotonic() + timeout_s
        while True:
            result = await self.page.evaluate(_RESOLVE_JS, [labels, segments])
            if result.get("ok") and result.get("control"):
                return self.page.locator(f'[data-lexis-path="{path}"]')
            depth = int(result.get("depth", 0))
            if expansions < len(segments) and await self._expand(segments, depth):
                expansions += 1
                continue
            if time.monotonic() > deadline:  # else Vue/React may still be rendering nested fields
                raise PrefectUIError(
                    f"{self.page.url}: no form field for {path!r} (labels looked for: {labels}); "
                    f"found down to {segments[:depth] or 'nothing'}; labels there: {result.get('seen')}"
                )
            await self.page.wait_for_timeout(250)

    async def _expand(self, segments: list[str], depth: int) -> bool:
        """Switch the property `segments[:depth]` (an `anyOf` on its "None" choice) to its non-null branch."""
        if depth == 0:
            return False
        prefix = ".".join(segments[:depth])
        fieldset = self.page.locator(f'[data-lexis-field="{prefix}"]').first
        if not await fieldset.count():
            return False
        # The branch choice: v1 a button group beside the property's fieldset, v2 tabs inside it.
        scope = fieldset.locator("xpath=..")
        definitions = {**(self.schema.get("$defs") or {}), **(self.schema.get("definitions") or {})}
        node: dict[str, Any] = self.schema
        for key in segments[:depth]:
            container = _resolve_ref(node, definitions)
            if "properties" not in container:
                container = next((b for b in _branches(container, definitions) if "properties" in b), container)
            node = _resolve_ref((container.get("properties") or {}).get(key, {}), definitions)
        for branch in _branches(node, definitions):
            title = branch.get("title") or branch.get("type")
            if not isinstance(title, str):
                continue
            choice = scope.locator("button, [role=tab], [role=radio]").filter(
                has_text=re.compile(rf"^\s*{re.escape(title)}\s*$", re.IGNORECASE)
            )
            if await choice.count():
                await choice.first.click()
                await self.page.wait_for_timeout(300)
                return True
        return False

    async def choose_block(self, path: str, block_name: str) -> None:
        """Pick a saved block by name in a block-document selector (a `block_type_slug` parameter)."""
        control = await self.locate(path)
        option = self.page.get_by_role("option", name=block_name, exact=True).first
        if "p-select-button__control" in (await control.get_attribute("class") or ""):
            # v1 (prefect-design's p-select): Playwright's click opens and at once closes its
            # pop-over; the keyboard opens it for good.
            await control.focus()
            await self.page.keyboard.press(" ")
        else:
            await control.click()  # v2: a Radix popover listing the blocks, then "Create new block"
        await option.wait_for(state="visible")
        await option.click()

    async def submit(self, *, timeout_s: float = 30.0) -> dict[str, Any]:
        """Press Submit; the flow run the server created (its JSON), or `PrefectUIError`."""
        from playwright.async_api import TimeoutError as PlaywrightTimeout

        def created(response: Any) -> bool:
            return response.request.method == "POST" and response.url.endswith("/create_flow_run")

        for attempt in range(1, SUBMIT_ATTEMPTS + 1):
            try:
                async with self.page.expect_response(created, timeout=timeout_s * 1000) as info:
                    await self.page.get_by_role("button", name="Submit", exact=True).click()
                response = await info.value
            except PlaywrightTimeout:
                raise PrefectUIError(
                    f"{self.page.url}: Submit sent no create_flow_run request (form invalid?)\n"
                    f"{(await body_text(self.page))[:3000]}"
                ) from None
            # The server on SQLite answers 503 when a write lost a race with another (no run was
            # created); the UI shows an error and keeps the form, and its user submits again.
            if response.status != 503 or attempt == SUBMIT_ATTEMPTS:
                break
            await asyncio.sleep(attempt)
        if not response.ok:
            raise PrefectUIError(f"create_flow_run answered {response.status}: {await response.text()}")
        return await response.json()


async def open_run_form(
    page: Page,
    ui_url: str,
    deployment_id: Any,
    out_dir: Path,
    *,
    fields: Sequence[str] = ("job1.requirements.job_name",),
    timeout_s: float = 30.0,
) -> RunForm:
    """Open the deployment's custom run form, find `fields` in it, screenshot it.

    The route is `{ui_url}/deployments/deployment/{id}/run` in both UIs. Nested pydantic models
    render as nested form fields (not JSON) in both; each dotted path in `fields` is found by the
    chain of labels the form shows (titles from the deployment's parameter schema, which the page
    itself fetches), and its input gets a `data-lexis-path="<path>"` attribute, so
    `page.locator('[data-lexis-path="job1.requirements.job_name"]')` is the robust locator.

    Screenshot: `out_dir/run-form-<short deployment id>.png`.

    Returns:
        A `RunForm`: `text` (the page's innerText), `fields` (path -> Locator), `values`
        (path -> current value: input value, or the select's shown text), `deployment` (the API's
        JSON of it), and `choose_block()` / `submit()`.
    """
    short = _short(deployment_id)
    base = ui_url.rstrip("/")
    failed = out_dir / f"run-form-{short}-failed.png"

    def deployment_response(response: Any) -> bool:
        return response.request.method == "GET" and response.url.rstrip("/").endswith(f"/deployments/{deployment_id}")

    async with page.expect_response(deployment_response, timeout=timeout_s * 1000) as info:
        await page.goto(f"{base}/deployments/deployment/{deployment_id}/run")
    response = await info.value
    if not response.ok:
        await save_screenshot(page, failed)
        raise PrefectUIError(f"{response.url} answered {response.status}: {await response.text()}")
    form = RunForm(page=page, deployment=await response.json(), text="")

    first_labels = sorted({name.lower() for path in fields for name in field_labels(form.schema, path)[0]})
    await _wait_ready(page, _FORM_READY_JS, first_labels, "the parameter form", failed, timeout_s)
    for path in fields:
        locator = await form.locate(path)
        form.fields[path] = locator
        tag = await locator.evaluate("e => e.tagName.toLowerCase()")
        form.values[path] = (
            await locator.input_value() if tag in ("input", "textarea", "select") else (await locator.inner_text()).strip()
        )
    form.text = await body_text(page)
    form.screenshot = await save_screenshot(page, out_dir / f"run-form-{short}.png")
    return form
