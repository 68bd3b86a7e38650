"""A real browser loads the example's release: headless Chromium (Debian's) applies the digested
stylesheet (its integrity checked against the manifest's sha512), runs the digested script, and
the digested responses carry far-future immutable caching and a compressed encoding.

Chromium is driven over the DevTools protocol on a pipe (--remote-debugging-pipe: JSON
messages separated by NUL on fds 3 and 4), which needs nothing beyond the standard library.
"""
from __future__ import annotations

import fcntl
import gzip
import json
import os
import re
import select
import shlex
import shutil
import subprocess
import time
import urllib.request

import pytest

from conftest import free_port, release_env

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
IMMUTABLE = "public, max-age=31536000, immutable"
DIGESTED = re.compile(r"/static/(css|js|images)/[\w.]+-[0-9a-f]{32}\.(css|js|svg)$")


class Browser:
    """Headless Chromium with one page, spoken to over the DevTools pipe."""

    def __init__(self, profile: str) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # Above 9, so that moving them to 3 and 4 in the child cannot clobber each other.
        to_browser_r, from_browser_w = (_moved_above_9(to_browser_r),
                                        _moved_above_9(from_browser_w))
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-proxy-server",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}",
                 "--remote-debugging-pipe", "about:blank"]
        # The protocol lives on fds 3 (commands) and 4 (replies and events); bash, because
        # dash's redirections take single-digit descriptors only.
        command = (f"exec {CHROMIUM} {' '.join(map(shlex.quote, flags))} "
                   f"3<&{to_browser_r} 4>&{from_browser_w}")
        self.proc = subprocess.Popen(["bash", "-c", command],
                                     pass_fds=(to_browser_r, from_browser_w),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer, self._next_id, self.events = b"", 0, []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target,
                                 flatten=True)["sessionId"]

    def call(self, method: str, session: str | None = None, timeout: float = 30, **params):
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        reply = self.wait(lambda m: m.get("id") == self._next_id, timeout)
        if "error" in reply:
            raise AssertionError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def page(self, method: str, **params):
        return self.call(method, session=self.session, **params)

    def wait(self, matches, timeout: float = 30) -> dict:
        """The first message (replies and events are both kept in ``events``) that matches."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for message in self.events[seen:]:
                if matches(message):
                    return message
            seen = len(self.events)
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise AssertionError("Chromium did not answer in time")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise AssertionError(f"Chromium exited ({self.proc.poll()})")
            self._buffer += chunk
            *complete, self._buffer = self._buffer.split(b"\0")
            self.events.extend(json.loads(part) for part in complete)

    def evaluate(self, expression: str):
        result = self.page("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=5)
        except (AssertionError, OSError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)
            self.proc.wait(10)
        os.close(self._to_browser)
        os.close(self._from_browser)


def _moved_above_9(fd: int) -> int:
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return moved


@pytest.fixture
def browser(tmp_path):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium "
                    "(`make setup` does, through scripts/system-deps)")
    chromium = Browser(str(tmp_path / "chromium-profile"))
    yield chromium
    chromium.close()
    shutil.rmtree(tmp_path / "chromium-profile", ignore_errors=True)


@pytest.fixture
def served(hello_release, tmp_path, nodes):
    port = free_port()
    env = release_env(tmp_path, PORT=str(port), HOST="127.0.0.1")
    binary = str(hello_release / "bin" / "hello")
    migrate = subprocess.run([binary, "eval", "hello.release.migrate()"], env=env,
                             capture_output=True, text=True, timeout=60)
    assert migrate.returncode == 0, migrate.stderr
    return nodes([binary, "start"], env, port).wait_ready()


def test_a_browser_gets_the_digested_assets_applied_and_cached_forever(served, browser):
    browser.page("Network.enable")
    browser.page("Page.enable")
    browser.page("Page.navigate", url=served.url("/"))
    browser.wait(lambda m: m.get("method") == "Page.loadEventFired")
    page = browser.evaluate("""(() => {
        const sheet = document.querySelector('link[rel=stylesheet]');
        const script = document.querySelector('script[src]');
        return {
          stylesheet: sheet.href, script: script.src,
          integrity: sheet.integrity,
          h1: getComputedStyle(document.querySelector('h1')).color,
          logo: getComputedStyle(document.querySelector('.logo')).backgroundImage,
          scripted: document.documentElement.classList.contains('js-ready'),
          status: document.getElementById('js-status').textContent,
        };
    })()""")
    assert DIGESTED.search(page["stylesheet"]) and DIGESTED.search(page["script"]), page
    assert page["integrity"].startswith("sha512-")
    assert page["h1"] == "rgb(75, 44, 131)", "the digested stylesheet is applied"
    assert re.search(r"/static/images/logo-[0-9a-f]{32}\.svg", page["logo"]), page["logo"]
    assert page["scripted"] and page["status"].startswith("JavaScript ran at"), page

    wanted = {page["stylesheet"], page["script"], re.search(r'url\("(.*)"\)', page["logo"])[1]}
    responses = {}
    for url in wanted:
        event = browser.wait(lambda m: m.get("method") == "Network.responseReceived"
                             and m["params"]["response"]["url"] == url, timeout=15)
        responses[url] = event["params"]
    for url, params in responses.items():
        response = params["response"]
        headers = {k.lower(): v for k, v in response["headers"].items()}
        sent = browser.wait(lambda m: m.get("method") == "Network.requestWillBeSentExtraInfo"
                            and m["params"]["requestId"] == params["requestId"])
        accepted = {k.lower(): v for k, v in sent["params"]["headers"].items()}
        accepted = [e.strip() for e in accepted.get("accept-encoding", "").split(",")]
        assert response["status"] == 200, url
        assert headers["cache-control"] == IMMUTABLE, url
        expected = "br" if "br" in accepted else "gzip"
        assert headers.get("content-encoding") == expected, (url, accepted, headers)


@pytest.mark.parametrize("accept, encoding", [("gzip", "gzip"), ("br", "br"),
                                              ("gzip, deflate, br", "br"), ("", None)])
def test_digested_responses_negotiate_their_encoding(served, accept, encoding):
    with urllib.request.urlopen(served.url("/"), timeout=10) as response:
        css = re.search(r'href="(/static/css/app-[0-9a-f]{32}\.css)"', response.read().decode())[1]
    request = urllib.request.Request(served.url(css), headers={"Accept-Encoding": accept})
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
        assert response.headers["Cache-Control"] == IMMUTABLE
        assert response.headers.get("Content-Encoding") == encoding
    if encoding == "gzip":
        body = gzip.decompress(body)
    if encoding != "br":
        assert b"h1{color:#4b2c83}" in body
