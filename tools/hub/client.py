"""A participant without a browser: sign in through the hub's REST API, start a server, run code in kernels.

    alice = Participant("http://127.0.0.1:8000", "alice", "the room password")
    alice.sign_in()                    # POST /hub/api/users/alice/tokens with the password: an API token
    alice.start_server()               # POST /hub/api/users/alice/server, then wait until it is ready
    with alice.kernel("notebooks/01_rope_relative_positions.ipynb") as kernel:
        reply = kernel.execute("1 + 1")    # ExecuteResult: status, text, seconds

Used by the load test (loadtest.py) and the hub's tests. requests and websocket-client come with JupyterLab.
"""
from __future__ import annotations

import json
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import quote

import requests
import websocket


class HubError(RuntimeError):
    """The hub or a server answered something other than what a participant expects."""


@dataclass
class ExecuteResult:
    """What one execute_request gave back."""

    status: str  # "ok", "error", "died" when the kernel stopped (e.g. killed at the memory limit), or "timeout"
    seconds: float
    text: str = ""  # stdout, stderr, results and error lines together
    images: int = 0  # image outputs (figures)
    error: str = ""


@dataclass
class Kernel:
    """A kernel of a participant's server, talked to over its websocket (Jupyter messaging, JSON)."""

    participant: "Participant"
    kernel_id: str
    session_id: str
    socket: websocket.WebSocket = field(repr=False)

    def execute(self, code: str, timeout: float = 600.0) -> ExecuteResult:
        """Run CODE; wait for its reply and for the kernel to go idle."""
        msg_id = uuid.uuid4().hex
        self.socket.send(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": self.participant.name,
                       "session": self.session_id, "version": "5.3", "date": ""},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True},
        }))
        start = time.perf_counter()
        text, images, status, error, replied, idle = [], 0, "", "", False, False
        while not (replied and idle):
            left = timeout - (time.perf_counter() - start)
            if left <= 0 and not replied:  # once the reply is in, only the idle status that follows is awaited
                return ExecuteResult("timeout", time.perf_counter() - start, "".join(text), images,
                                     f"no reply in {timeout:.0f} s")
            # short waits: the server's websocket pings (every 30 s or so) would keep one long recv() blocked past
            # the deadline, since the client answers control frames inside recv() and waits on
            self.socket.settimeout(min(max(left, 0.1), 5.0))
            try:
                raw = self.socket.recv()
            except websocket.WebSocketTimeoutException:
                continue
            except (websocket.WebSocketException, OSError) as failure:
                return ExecuteResult("died", time.perf_counter() - start, "".join(text), images, str(failure))
            if not isinstance(raw, str):  # a binary frame (buffers): not used by these notebooks
                continue
            message = json.loads(raw)
            kind, content = message["msg_type"], message["content"]
            if kind == "status" and content.get("execution_state") in ("restarting", "dead"):
                return ExecuteResult("died", time.perf_counter() - start, "".join(text), images,
                                     f"kernel {content['execution_state']}")
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if kind == "stream":
                text.append(content["text"])
            elif kind in ("execute_result", "display_data"):
                data = content.get("data", {})
                images += any(key.startswith("image/") for key in data)
                text.append(data.get("text/plain", "") + "\n")
            elif kind == "error":
                error = f"{content['ename']}: {content['evalue']}"
                text.append(error + "\n")
            elif kind == "execute_reply":
                status, replied = content["status"], True
            elif kind == "status" and content.get("execution_state") == "idle":
                idle = True
        return ExecuteResult(status, time.perf_counter() - start, "".join(text), images, error)


class Participant:
    """One participant talking to the hub and to their own server over HTTP."""

    def __init__(self, hub_url: str, name: str, password: str, timeout: float = 60.0):
        self.hub_url, self.name, self.password, self.timeout = hub_url.rstrip("/"), name, password, timeout
        self.http = requests.Session()
        self.token = ""

    @property
    def server_url(self) -> str:
        """The base URL of this participant's server, through the proxy."""
        return f"{self.hub_url}/user/{quote(self.name)}"

    def request(self, method: str, url: str, expect: tuple[int, ...] | None = (200,), **kwargs) -> requests.Response:
        """An HTTP request with this participant's token; HubError unless the status is in EXPECT."""
        headers = {"Authorization": f"token {self.token}"} if self.token else {}
        answer = self.http.request(method, url, headers=headers, timeout=self.timeout, allow_redirects=False, **kwargs)
        if expect is not None and answer.status_code not in expect:
            raise HubError(f"{method} {url}: {answer.status_code} {answer.text[:200]}")
        return answer

    def sign_in(self) -> str:
        """Exchange name and password for an API token (the hub's REST API, no browser); HubError if refused."""
        answer = self.request("POST", f"{self.hub_url}/hub/api/users/{quote(self.name)}/tokens", expect=None,
                              json={"auth": {"username": self.name, "password": self.password},
                                    "note": "selfextend hub client", "expires_in": 24 * 3600})
        if answer.status_code not in (200, 201):
            raise HubError(f"sign-in as {self.name} refused: {answer.status_code}")
        self.token = answer.json()["token"]
        return self.token

    def server(self) -> dict | None:
        """The hub's record of this participant's default server (None when it is not running)."""
        user = self.request("GET", f"{self.hub_url}/hub/api/users/{quote(self.name)}").json()
        return user.get("servers", {}).get("")

    def start_server(self, timeout: float = 600.0) -> float:
        """Start the server (if needed) and wait until it answers; return the seconds it took."""
        start = time.perf_counter()
        self.request("POST", f"{self.hub_url}/hub/api/users/{quote(self.name)}/server", expect=(201, 202, 400))
        while time.perf_counter() - start < timeout:
            record = self.server()
            if record and record.get("ready"):
                if self.request("GET", f"{self.server_url}/api/status", expect=None).status_code == 200:
                    return time.perf_counter() - start
            elif record is None and time.perf_counter() - start > 5:
                raise HubError(f"{self.name}'s server stopped while starting (see the hub's log)")
            time.sleep(0.5)
        raise HubError(f"{self.name}'s server did not start in {timeout:.0f} s")

    def stop_server(self, timeout: float = 120.0) -> None:
        """Stop the server and wait until the hub says it is gone."""
        self.request("DELETE", f"{self.hub_url}/hub/api/users/{quote(self.name)}/server", expect=(202, 204, 400))
        deadline = time.monotonic() + timeout
        while self.server() is not None:
            if time.monotonic() > deadline:
                raise HubError(f"{self.name}'s server did not stop in {timeout:.0f} s")
            time.sleep(0.5)

    def contents(self, path: str, owner: str | None = None,
                 expect: tuple[int, ...] | None = (200,)) -> requests.Response:
        """GET a file or folder through the contents API of OWNER's server (default: this participant's)."""
        base = f"{self.hub_url}/user/{quote(owner)}" if owner else self.server_url
        return self.request("GET", f"{base}/api/contents/{quote(path)}", expect=expect)

    def save(self, path: str, model: dict) -> None:
        """PUT a file through the contents API (as JupyterLab saves a notebook)."""
        self.request("PUT", f"{self.server_url}/api/contents/{quote(path)}", expect=(200, 201), json=model)

    def terminal(self, command: str, timeout: float = 120.0) -> str:
        """Run a shell COMMAND in a new JupyterLab terminal of this participant's server; return what it printed."""
        name = self.request("POST", f"{self.server_url}/api/terminals", expect=(200,)).json()["name"]
        ws_url = self.server_url.replace("http", "ws", 1) + f"/terminals/websocket/{name}"
        socket = websocket.create_connection(ws_url, header=[f"Authorization: token {self.token}"], timeout=timeout)
        marker = uuid.uuid4().hex[:12]
        try:  # the typed line echoes as A""B, the output reads AB: only the output matches
            socket.send(json.dumps(["stdin", f'{command}; echo {marker}""{marker}\r']))
            output = ""
            while marker + marker not in output:
                kind, *payload = json.loads(socket.recv())
                if kind == "stdout":
                    output += payload[0]
            return output
        finally:
            socket.close()
            self.request("DELETE", f"{self.server_url}/api/terminals/{name}", expect=None)

    @contextmanager
    def kernel(self, notebook_path: str = "", kernel_name: str = "python3"):
        """A session (kernel) for a notebook path, with its websocket; shut down on exit."""
        session = self.request("POST", f"{self.server_url}/api/sessions", expect=(201,), json={
            "path": notebook_path or f"loadtest-{uuid.uuid4().hex[:8]}.ipynb", "type": "notebook",
            "name": "", "kernel": {"name": kernel_name}}).json()
        kernel_id = session["kernel"]["id"]
        ws_url = self.server_url.replace("http", "ws", 1) + f"/api/kernels/{kernel_id}/channels"
        socket = websocket.create_connection(ws_url, header=[f"Authorization: token {self.token}"],
                                             timeout=self.timeout)
        try:
            yield Kernel(self, kernel_id, uuid.uuid4().hex, socket)
        finally:
            socket.close()
            self.request("DELETE", f"{self.server_url}/api/sessions/{session['id']}", expect=None)
