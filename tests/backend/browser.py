"""Debian's headless Chromium, driven over the DevTools protocol on a pipe.

`--remote-debugging-pipe` makes Chromium read commands (JSON, each ended by a
NUL byte) on fd 3 and write answers and events on fd 4: no port, no extra
package. A reader thread routes answers to their callers and keeps every
event; the page's JavaScript errors, console errors and failed loads are
collected so a test can assert there were none.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from ..polling import poll
from ..service_markers import require_service

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--remote-debugging-pipe", "--hide-scrollbars",
         "--force-device-scale-factor=1"]


def chromium_path() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail("headless chromium is needed: apt-get install -y chromium", pytrace=False)
    return path


class BrowserError(AssertionError):
    pass


class Browser:
    def __init__(self, profile: Path):
        require_service("browser")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def fds():  # in the child, before exec: the pipe ends become fds 3 and 4
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)

        self.proc = subprocess.Popen([chromium_path(), *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                     pass_fds=(3, 4), preexec_fn=fds,  # noqa: PLW1509 - single-threaded child
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._next_id = 0
        self._answers: dict[int, dict] = {}
        self.events: list[dict] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True, name="cdp-reader")
        self._reader.start()
        self.session = None

    # ---- protocol -------------------------------------------------------------------------
    def _read(self) -> None:
        buf = b""
        while True:
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                with self._cond:
                    self._cond.notify_all()
                return
            buf += chunk
            *messages, buf = buf.split(b"\0")
            with self._cond:
                for raw in messages:
                    message = json.loads(raw)
                    if "id" in message:
                        self._answers[message["id"]] = message
                    else:
                        self.events.append(message)
                self._cond.notify_all()

    def send(self, method: str, params: dict | None = None, *, session: bool = True, timeout: float = 30.0):
        with self._cond:
            self._next_id += 1
            call = self._next_id
        message = {"id": call, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        with self._cond:
            while call not in self._answers:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise BrowserError(f"no answer to {method} within {timeout} s")
                self._cond.wait(left)
            answer = self._answers.pop(call)
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    def open_page(self, width: int = 1400, height: int = 1000) -> None:
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 session=False)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")
        self.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height,
                                                         "deviceScaleFactor": 1, "mobile": False})

    # ---- page -------------------------------------------------------------------------------
    def goto(self, url: str) -> None:
        self.send("Page.navigate", {"url": url})

    def js(self, expression: str, timeout: float = 30.0):
        result = self.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                "returnByValue": True}, timeout=timeout)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression[:80]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30.0, what: str = ""):
        """Poll a JavaScript expression until it is truthy (on a deadline, never a fixed sleep)."""
        def value():
            try:
                return self.js(expression)
            except BrowserError:
                return None  # the page is navigating

        last = poll(value, timeout=timeout)
        if last:
            return last
        state = self.js("document.body && document.body.dataset.state")
        status = self.js("document.getElementById('status')?.textContent")
        raise BrowserError(f"timed out waiting for {what or expression}; state: {state!r}, "
                           f"status: {status!r}")

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    # ---- what went wrong --------------------------------------------------------------------
    def problems(self, *, allow_status: tuple[int, ...] = ()) -> list[str]:
        """JavaScript exceptions, console errors, failed loads and dialogs seen so far (a load that
        failed with one of `allow_status` excepted), then forgets them."""
        out = []
        with self._cond:
            events, self.events = self.events, []
        statuses = {e["params"]["requestId"]: e["params"]["response"]["status"] for e in events
                    if e["method"] == "Network.responseReceived"}
        for e in events:
            method, params = e["method"], e.get("params", {})
            if method == "Runtime.exceptionThrown":
                out.append(f"exception: {params['exceptionDetails'].get('exception', {}).get('description')}")
            elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                out.append("console.error: " + " ".join(str(a.get("value", a.get("description")))
                                                         for a in params["args"]))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                entry = params["entry"]
                status = statuses.get(entry.get("networkRequestId"))
                if entry.get("source") == "network" and status in allow_status:
                    continue
                out.append(f"log ({entry.get('source')}): {entry['text']} {entry.get('url', '')}")
            elif method == "Page.javascriptDialogOpening":
                out.append(f"dialog: {params['message']}")
        return out

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send("Browser.close", session=False, timeout=5)
            except BrowserError:
                pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        os.close(self._to_browser)
        self._reader.join(5)
        os.close(self._from_browser)
