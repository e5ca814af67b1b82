"""A real `streamlit run` server for the tests, and a client that talks to it over the
websocket as a browser tab does. Every wait is bounded; the server is stopped by its own
process id."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

EXAMPLE_APP = Path(__file__).resolve().parent.parent / "examples" / "app.py"


# Headless on loopback, no file watching, no usage statistics; the port comes last.
SERVER_OPTIONS = (
    "--server.headless=true",
    "--server.address=127.0.0.1",
    "--browser.gatherUsageStats=false",
    "--server.fileWatcherType=none",
    "--server.port",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, process: subprocess.Popen[bytes], port: int, output: Path) -> None:
        self.process = process
        self.port = port
        self.output = output
        self.url = f"http://127.0.0.1:{port}/"

    def log(self) -> str:
        return self.output.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not in the server's output:\n{self.log()}")
            time.sleep(0.05)

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited early:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}_stcore/health", timeout=2) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"the server never became healthy:\n{self.log()}")


@contextlib.contextmanager
def served(app: Path, tmp_path: Path, **env: str) -> Iterator[Server]:
    """`python -m streamlit run app` on a free loopback port, until the block ends."""
    output = tmp_path / "server.log"
    for _attempt in range(3):  # a port taken between choosing and binding: try another
        port = _free_port()
        with output.open("wb") as sink:
            command = [sys.executable, "-m", "streamlit", "run", str(app)]
            process = subprocess.Popen(
                [*command, *SERVER_OPTIONS, str(port)],
                stdout=sink,
                stderr=subprocess.STDOUT,
                env={**os.environ, **env},
            )
        server = Server(process, port, output)
        try:
            server.wait_healthy()
        except AssertionError:
            _stop(process)
            if "already in use" in server.log():
                continue
            raise
        try:
            yield server
        finally:
            _stop(process)
        return
    raise AssertionError("no free port for the server")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


class Tab:
    """One browser tab: a websocket session that asks for script runs and reads the page
    they produce."""

    def __init__(self, server: Server) -> None:
        from websockets.sync.client import connect

        self._socket = connect(
            f"ws://127.0.0.1:{server.port}/_stcore/stream",
            subprotocols=["streamlit"],  # type: ignore[list-item]
            open_timeout=10,
            max_size=None,
        )
        self._socket.__enter__()
        self.session_id: str | None = None

    def close(self) -> None:
        self._socket.__exit__(None, None, None)

    def _send(self, **fields: Any) -> None:
        from streamlit.proto.BackMsg_pb2 import BackMsg

        self._socket.send(BackMsg(**fields).SerializeToString())

    def run(self, timeout: float = 30.0) -> list[str]:
        """Reruns the script (as loading or refreshing the page does) and returns the
        text of its elements, in order."""
        from streamlit.proto.ClientState_pb2 import ClientState

        self._send(rerun_script=ClientState())
        return self._read_run(timeout)

    def clear_cache(self) -> None:
        """What the app menu's "Clear cache" sends."""
        self._send(clear_cache=True)

    def _read_run(self, timeout: float) -> list[str]:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        texts: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"the script run did not finish; page so far: {texts}")
            msg = ForwardMsg()
            msg.ParseFromString(self._socket.recv(timeout=left))
            kind = msg.WhichOneof("type")
            if kind == "new_session":
                self.session_id = msg.new_session.initialize.session_id
            elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                element = msg.delta.new_element
                which = element.WhichOneof("type")
                if which == "text":
                    texts.append(element.text.body)
                elif which == "exception":
                    texts.append(f"{element.exception.type}: {element.exception.message}")
            elif (
                kind == "script_finished"
                and msg.script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN
            ):
                return texts
