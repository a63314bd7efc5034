"""Reusing a running local Prefect server (``lexis_prefect.local_server``), against a stand-in.

The stand-in answers Prefect's health check on a free port (``LEXIS_PREFECT_LOCAL_SERVER`` points
the probe at it), so no test reaches a real server that may run on the machine.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings

from lexis_prefect import local_server


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's spelling
        ok = self.path == "/api/health"
        self.send_response(200 if ok else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"true" if ok else b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/api"
    monkeypatch.setenv(local_server.ENV_URL, url)
    monkeypatch.setenv(local_server.ENV_REUSE, "true")
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def no_api_url() -> Iterator[None]:
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        yield


@pytest.mark.usefixtures("no_api_url")
def test_a_running_server_is_used_when_no_api_url_is_set(stand_in: str) -> None:
    with local_server.reuse_running_server() as used:
        assert used == stand_in
        assert PREFECT_API_URL.value() == stand_in
    assert not PREFECT_API_URL.value()


@pytest.mark.usefixtures("no_api_url")
def test_the_opt_out_leaves_prefect_alone(stand_in: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(local_server.ENV_REUSE, "false")
    with local_server.reuse_running_server() as used:
        assert used is None and not PREFECT_API_URL.value()


def test_an_api_url_already_chosen_wins(stand_in: str) -> None:
    with temporary_settings({PREFECT_API_URL: "http://elsewhere.invalid/api"}):
        with local_server.reuse_running_server() as used:
            assert used is None
            assert PREFECT_API_URL.value() == "http://elsewhere.invalid/api"


@pytest.mark.usefixtures("no_api_url")
def test_nothing_listening_means_prefect_does_as_it_would(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv(local_server.ENV_URL, f"http://127.0.0.1:{port}/api")
    monkeypatch.setenv(local_server.ENV_REUSE, "true")
    with local_server.reuse_running_server() as used:
        assert used is None


@pytest.mark.usefixtures("no_api_url")
def test_something_else_on_the_port_is_not_taken_for_prefect(stand_in: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(local_server.ENV_URL, stand_in.replace("/api", "/not-prefect"))
    assert local_server.running_server() is None
