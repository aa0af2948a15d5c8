"""Tests of mirror downloads against an HTTP server on 127.0.0.1 that each test starts."""

import hashlib
import http.server
import logging
import socket
import threading
import time

import pytest

from forwardforward.data import DownloadFailed, download_file, downloads_allowed
from forwardforward.errors import DataError, UsageError

PAYLOAD = bytes(range(256)) * 300
PAYLOAD_SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


class MirrorHandler(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD under /good/, misbehaves under the other paths, 404 elsewhere."""

    def do_GET(self):
        if self.path.startswith("/good/"):
            self._send_body(PAYLOAD)
        elif self.path.startswith("/other/"):
            self._send_body(b"different content")
        elif self.path.startswith("/truncated/"):
            # Promise the whole payload, send half, then close the connection.
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 2])
            self.wfile.flush()
            self.close_connection = True
        elif self.path.startswith("/slow/"):
            time.sleep(1.0)
            self._send_body(PAYLOAD)
        else:
            self.send_error(404, "Not Found")

    def _send_body(self, body):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # The client gave up, as in the timeout test.

    def log_message(self, format, *args):
        pass


@pytest.fixture
def server_url():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), MirrorHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    host, port = server.server_address
    yield f"http://{host}:{port}"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def closed_port_url():
    """URL of a 127.0.0.1 port that nothing listens on, so connecting is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def folder_names(folder):
    return sorted(entry.name for entry in folder.iterdir())


def test_download_good_file(server_url, tmp_path):
    destination = tmp_path / "mnist" / "file.gz"

    result = download_file([f"{server_url}/good/file.gz"], destination, PAYLOAD_SHA256)

    assert result == destination
    assert destination.read_bytes() == PAYLOAD
    assert folder_names(destination.parent) == ["file.gz"]


def test_download_wrong_checksum_leaves_nothing(server_url, tmp_path):
    destination = tmp_path / "file.gz"

    with pytest.raises(DataError) as excinfo:
        download_file([f"{server_url}/other/file.gz"], destination, PAYLOAD_SHA256)

    assert "SHA-256 mismatch" in str(excinfo.value)
    assert PAYLOAD_SHA256 in str(excinfo.value)
    assert folder_names(tmp_path) == []


def test_download_404_then_second_mirror(server_url, tmp_path, caplog):
    destination = tmp_path / "file.gz"
    urls = [f"{server_url}/missing/file.gz", f"{server_url}/good/file.gz"]

    with caplog.at_level(logging.INFO, logger="forwardforward.data.download"):
        download_file(urls, destination, PAYLOAD_SHA256)

    assert destination.read_bytes() == PAYLOAD
    assert folder_names(tmp_path) == ["file.gz"]
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "HTTP 404" in warnings[0]
    assert urls[0] in warnings[0]


def test_download_bad_checksum_then_second_mirror(server_url, tmp_path):
    destination = tmp_path / "file.gz"
    urls = [f"{server_url}/other/file.gz", f"{server_url}/good/file.gz"]

    download_file(urls, destination, PAYLOAD_SHA256)

    assert destination.read_bytes() == PAYLOAD
    assert folder_names(tmp_path) == ["file.gz"]


def test_download_all_mirrors_fail(server_url, closed_port_url, tmp_path):
    destination = tmp_path / "train-images-idx3-ubyte.gz"
    urls = [
        f"{server_url}/missing/train-images-idx3-ubyte.gz",
        f"{server_url}/other/train-images-idx3-ubyte.gz",
        f"{server_url}/truncated/train-images-idx3-ubyte.gz",
        f"{closed_port_url}/train-images-idx3-ubyte.gz",
    ]

    with pytest.raises(DataError) as excinfo:
        download_file(urls, destination, PAYLOAD_SHA256)

    message = str(excinfo.value)
    assert "train-images-idx3-ubyte.gz" in message
    assert str(tmp_path) in message
    for url in urls:
        assert url in message
    assert "HTTP 404" in message
    assert "SHA-256 mismatch" in message
    assert "before the end of the body" in message or "connection closed" in message
    assert "connection failed" in message
    assert "\n" not in message
    assert folder_names(tmp_path) == []


def test_failure_removes_created_folders(server_url, tmp_path):
    (tmp_path / "kept").mkdir()
    destination = tmp_path / "kept" / "new" / "deeper" / "file.gz"

    with pytest.raises(DownloadFailed) as excinfo:
        download_file([f"{server_url}/missing/file.gz"], destination, PAYLOAD_SHA256)

    assert excinfo.value.failures == [f"{server_url}/missing/file.gz (HTTP 404 Not Found)"]
    assert folder_names(tmp_path) == ["kept"]
    assert list((tmp_path / "kept").iterdir()) == []


def test_download_broken_connection_leaves_nothing(server_url, tmp_path):
    destination = tmp_path / "file.gz"

    with pytest.raises(DataError, match="connection closed"):
        download_file([f"{server_url}/truncated/file.gz"], destination, PAYLOAD_SHA256)

    assert folder_names(tmp_path) == []


def test_download_timeout(server_url, tmp_path):
    destination = tmp_path / "file.gz"

    with pytest.raises(DataError, match="timed out"):
        download_file([f"{server_url}/slow/file.gz"], destination, PAYLOAD_SHA256, timeout=0.2)

    assert folder_names(tmp_path) == []


def test_download_failure_keeps_existing_file(server_url, tmp_path):
    destination = tmp_path / "file.gz"
    destination.write_bytes(b"old content")

    with pytest.raises(DataError):
        download_file([f"{server_url}/other/file.gz"], destination, PAYLOAD_SHA256)

    assert destination.read_bytes() == b"old content"
    assert folder_names(tmp_path) == ["file.gz"]


def test_download_unwritable_folder(server_url, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_bytes(b"a file where a folder is expected")

    with pytest.raises(DataError, match="Cannot create the data folder"):
        download_file([f"{server_url}/good/file.gz"], blocker / "file.gz", PAYLOAD_SHA256)


@pytest.mark.parametrize(
    ("urls", "sha256", "timeout", "fragment"),
    [
        ([], PAYLOAD_SHA256, 30.0, "non-empty list"),
        ("http://127.0.0.1/file.gz", PAYLOAD_SHA256, 30.0, "non-empty list"),
        (["file:///etc/passwd"], PAYLOAD_SHA256, 30.0, "http or https"),
        (["http://127.0.0.1/file.gz"], "abc", 30.0, "64 lowercase"),
        (["http://127.0.0.1/file.gz"], PAYLOAD_SHA256.upper(), 30.0, "64 lowercase"),
        (["http://127.0.0.1/file.gz"], PAYLOAD_SHA256, 0, "positive"),
    ],
)
def test_download_invalid_arguments(tmp_path, urls, sha256, timeout, fragment):
    with pytest.raises(UsageError, match=fragment):
        download_file(urls, tmp_path / "file.gz", sha256, timeout=timeout)

    assert folder_names(tmp_path) == []


@pytest.mark.parametrize(
    ("value", "allowed"),
    [(None, True), ("", True), ("0", True), ("no", True), ("1", False), ("true", False), ("YES", False)],
)
def test_downloads_allowed_values(monkeypatch, value, allowed):
    if value is None:
        monkeypatch.delenv("FORWARDFORWARD_OFFLINE", raising=False)
    else:
        monkeypatch.setenv("FORWARDFORWARD_OFFLINE", value)

    assert downloads_allowed() is allowed


def test_downloads_allowed_invalid_value(monkeypatch):
    monkeypatch.setenv("FORWARDFORWARD_OFFLINE", "maybe")

    with pytest.raises(UsageError, match="'maybe'"):
        downloads_allowed()
