"""The report in a real browser: headless Chromium driven over the DevTools protocol.

Chromium runs with ``--remote-debugging-pipe``: commands go in on its fd 3 and
replies and events come out on its fd 4, as NUL-terminated JSON. That needs no
websocket library and no open port. The test page is the report file itself; what
the browser saw (console messages, exceptions, network requests, dialogs) is
recorded from DevTools events, and the images are checked from inside the page.

Skipped when no Chromium is installed (CI installs Debian's ``chromium``).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
LAPTOP = {"width": 1366, "height": 800}
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
]


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


CHROMIUM = find_chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install chromium; .ci/run installs it)"
)


class Browser:
    """A headless Chromium with one page, spoken to over the DevTools pipe.

        with Browser() as browser:
            seen = browser.open(Path("report.html").resolve().as_uri())
            browser.evaluate("document.title")
    """

    def __init__(self, timeout: float = 60.0):
        self.timeout = timeout
        self.events: list[dict] = []
        self._next_id = 0
        self._buffer = b""

    def __enter__(self) -> "Browser":
        self._profile = tempfile.mkdtemp(prefix="birthlens-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def wire_fds():
            # In the child: the pipe ends become fd 3 (commands) and fd 4 (replies). Moved
            # above 10 first, so neither dup2 can overwrite the other end.
            high_r, high_w = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_child_r, from_child_w))
            os.dup2(high_r, 3)  # os.dup2 makes inheritable copies; every other fd closes on exec
            os.dup2(high_w, 4)

        self._proc = subprocess.Popen(
            [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={self._profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            close_fds=False, preexec_fn=wire_fds,
        )  # fmt: skip
        os.close(to_child_r)
        os.close(from_child_w)
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Network", "Log"):
            self.send(f"{domain}.enable", session=True)
        self.send("Emulation.setDeviceMetricsOverride", {**LAPTOP, "deviceScaleFactor": 1, "mobile": False}, session=True)
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        os.close(self._to_child)
        os.close(self._from_child)
        shutil.rmtree(self._profile, ignore_errors=True)

    # ---- the protocol ----------------------------------------------------------

    def _read_message(self, deadline: float) -> dict:
        import select

        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_child], [], [], left)[0]:
                raise TimeoutError("no answer from chromium")
            chunk = os.read(self._from_child, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, params: dict | None = None, session: bool = False, timeout: float | None = None) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._on_event(reply)

    def _on_event(self, event: dict) -> None:
        if "method" not in event:
            return
        self.events.append(event)
        if event["method"] == "Page.javascriptDialogOpening":
            # Dismiss it so the page goes on; the event stays recorded as evidence.
            os.write(self._to_child, json.dumps({"id": 10**9 + len(self.events), "method": "Page.handleJavaScriptDialog",
                                                 "params": {"accept": False}, "sessionId": self.session}).encode() + b"\0")  # fmt: skip

    def wait_for(self, method: str, timeout: float | None = None) -> dict:
        deadline = time.monotonic() + (timeout or self.timeout)
        seen = len(self.events)
        while True:
            for event in self.events[seen:]:
                if event["method"] == method:
                    return event
            seen = len(self.events)
            self._on_event(self._read_message(deadline))

    # ---- what a test uses -----------------------------------------------------

    def open(self, url: str) -> None:
        self.events.clear()
        self.send("Page.navigate", {"url": url}, session=True)
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str):
        result = self.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True, "returnByValue": True}, session=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path) -> Path:
        """A full-page PNG at laptop width."""
        height = int(self.evaluate("document.documentElement.scrollHeight"))
        clip = {"x": 0, "y": 0, "width": LAPTOP["width"], "height": height, "scale": 1}
        shot = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}, session=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def problems(self, page_url: str) -> dict[str, list]:
        """Console errors, uncaught exceptions, dialogs and requests to anything but the page."""
        out = {"console": [], "exceptions": [], "dialogs": [], "requests": []}
        for event in self.events:
            method, params = event["method"], event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert", "warning"):
                out["console"].append(params.get("args"))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                out["console"].append(params["entry"].get("text"))
            elif method == "Runtime.exceptionThrown":
                out["exceptions"].append(params.get("exceptionDetails", {}).get("text"))
            elif method == "Page.javascriptDialogOpening":
                out["dialogs"].append(params.get("message"))
            elif method == "Network.requestWillBeSent":
                url = params.get("request", {}).get("url", "")
                if url != page_url and not url.startswith("data:"):
                    out["requests"].append(url)
        return out


# Every <img> decoded, with its natural size: run inside the page.
IMAGES_JS = """
Promise.all(Array.from(document.images).map(img => img.decode().then(
    () => ({ok: true, w: img.naturalWidth, h: img.naturalHeight, shown: img.getBoundingClientRect().width, alt: img.alt}),
    () => ({ok: false, w: img.naturalWidth, h: img.naturalHeight, shown: 0, alt: img.alt}))))
"""


SCRIPT = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def browser():
    with Browser() as b:
        yield b


@pytest.fixture(scope="module")
def small_report(tmp_path_factory, smollm2) -> Path:
    """The demo's report from a small run (``--quick``) with SmolLM2 beside the toy.

    Until the demo can ablate (issue 5), ablation JSON in the format `birthlens ablate
    --json` writes is added through `birthlens report`, so that section is in the page too.
    """
    from birthlens.cli import main
    from birthlens.reports.demo import run_demo

    out = tmp_path_factory.mktemp("demo")
    result = run_demo(out, quick=True, llm=smollm2, quiet=True)
    bundle = json.loads(result.bundle.read_text())
    extra = []
    for model in bundle["models"]:
        if model.get("ablation"):
            continue
        n_layers, n_heads = model["probe"]["n_layers"], model["probe"]["n_heads"]
        layer, head = model["probe"]["memory_recall"]["induction_head"]
        effects = [[0.02 * ((l + h) % 3 - 1) for h in range(n_heads)] for l in range(n_layers)]
        effects[layer][head] = 1.5
        path = out / f"ablation-{len(extra)}.json"
        path.write_text(json.dumps({"model": model["name"], "metric": "second_copy_loss", "method": "zero",
                                    "heads": [[layer, head]], "baseline": 2.0, "ablated": 3.5, "delta": 1.5,
                                    "sweep": {"effects": effects}}))  # fmt: skip
        extra.append(str(path))
    if not extra:
        return result.report
    report = out / "report-with-ablation.html"
    assert main(["report", str(result.bundle), *extra, "--out", str(report), "--quiet"]) == 0
    return report


@pytest.fixture(scope="module")
def script_token_report(tmp_path_factory) -> Path:
    """A report whose example tokens and model name carry markup that must stay text."""
    from birthlens.probes.planted import planted_induction_model
    from birthlens.reports.entries import describe_model
    from birthlens.reports.html import write_report
    from birthlens.reports.sections import ReportData

    model = planted_induction_model(d_vocab=65, n_ctx=64)
    entry = describe_model(model, "planted <img src=x onerror=alert(2)>", length=8, composition=False, task=None)
    entry.example["tokens"][2] = SCRIPT
    out = tmp_path_factory.mktemp("xss") / "report.html"
    return write_report(ReportData(title=f"tokens {SCRIPT}", models=[entry]), out)


@needs_chromium
def test_demo_report_in_chromium(browser, small_report):
    """No console errors, no network requests, every figure decodes with a size; a screenshot."""
    url = small_report.resolve().as_uri()
    browser.open(url)
    images = browser.evaluate(IMAGES_JS)
    shot = browser.screenshot(ARTIFACTS / "report.png")
    problems = browser.problems(url)
    assert problems == {"console": [], "exceptions": [], "dialogs": [], "requests": []}, problems
    assert len(images) >= 8, images
    for image in images:
        assert image["ok"] and image["w"] > 0 and image["h"] > 0 and image["shown"] > 0, image
    # Laptop width: nothing forces sideways scrolling of the page.
    assert browser.evaluate("document.documentElement.scrollWidth") <= LAPTOP["width"]
    assert browser.evaluate("document.scripts.length") == 0
    sections = browser.evaluate("Array.from(document.querySelectorAll('section')).map(s => s.id)")
    for key in ("summary", "comparison", "birth", "heatmaps", "top_heads", "patterns", "induction_loss", "memory", "ablation"):
        assert key in sections, sections
    assert shot.stat().st_size > 10_000


@needs_chromium
def test_script_token_is_text_and_never_runs(browser, script_token_report):
    url = script_token_report.resolve().as_uri()
    browser.open(url)
    text = browser.evaluate("document.body.innerText")
    assert SCRIPT in text and "<img src=x onerror=alert(2)>" in text
    assert browser.evaluate("document.scripts.length") == 0
    assert browser.evaluate("document.querySelectorAll('[onerror], [onload]').length") == 0
    problems = browser.problems(url)
    assert problems == {"console": [], "exceptions": [], "dialogs": [], "requests": []}, problems
    browser.screenshot(ARTIFACTS / "script-token.png")


@needs_chromium
def test_the_harness_sees_scripts_that_run_and_requests_that_leave(browser, tmp_path):
    """The two checks above can fail: an unescaped script opens a dialog, an <img> fetches."""
    page = tmp_path / "unsafe.html"
    page.write_text(f'<!DOCTYPE html><html><body>{SCRIPT}<img src="http://127.0.0.1:9/x.png"></body></html>')
    url = page.resolve().as_uri()
    browser.open(url)
    problems = browser.problems(url)
    assert problems["dialogs"] == ["1"]
    assert problems["requests"] == ["http://127.0.0.1:9/x.png"]
