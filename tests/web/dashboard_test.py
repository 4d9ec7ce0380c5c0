#!/usr/bin/python3
"""The `dfmon watch` dashboard end to end, in headless Chromium driven over the DevTools protocol.

usage: dashboard_test.py DFMON RTSP_SERVER MODELS_DIR REAL_CLIP FAKE_CLIP WORKDIR [--screenshot FILE.png]

Real `dfmon watch` with the bundled models and a token; streams: an RTSP server looping the synthetic
fake clip, a looping file of the real clip, and a stream whose URI holds markup (it fails; its reason must
show as text). Checks: assets and 404s over HTTP; without ?token= the page says it needs one; with it, both
streams show live, each has a track with a sparkline that has points, an alert entry from the fake
stream has a loaded thumbnail; nothing from the events became markup; /recent needs the token and holds
the alert; a page opened after the alert lists it (from /recent) without duplicates; on SIGTERM the page
sees the feed close. Exits 77 (ctest SKIP_RETURN_CODE) when chromium is not installed, and only then.
"""
import asyncio
import base64
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import websockets

# The RTSP and dfmon launchers of the `dfmon watch` end-to-end test; shared helpers.
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, "..", "apps"), os.path.join(HERE, "..", "tools")]
from testutil import fail, free_port  # noqa: E402
from watch_test import start_dfmon, start_rtsp  # noqa: E402

TOKEN = "s3cr/et&+x"  # characters that must survive encodeURIComponent and the thumbnail path
EVIL_URI = "file:///nonexistent/<img/src=x/onerror=window.__xss=1>.mp4"



def http_request(addr, path, method="GET"):
    """Raw request: the path goes out byte for byte (no client-side normalisation of ../ or %2e)."""
    host, port = addr.split(":")
    c = http.client.HTTPConnection(host, int(port), timeout=10)
    c.request(method, path)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, r.getheader("Content-Type", ""), body


def check_http(addr):
    for path, ctype in (("/", "text/html"), ("/app.js", "text/javascript"), ("/style.css", "text/css")):
        status, got, body = http_request(addr, path)
        if status != 200 or not got.startswith(ctype) or not body:
            fail("%s: %d %s (%d bytes)" % (path, status, got, len(body)))
    for path in ("/nope", "/../etc/passwd", "/%2e%2e/etc/passwd", "/thumb/../x", "/thumb/%2e%2e/x",
                 "/thumb/rtsp-fake/1.jpg", "/thumb/" + urllib.parse.quote(TOKEN, safe="") + "/..%2f..%2fetc/1.jpg",
                 "/app.js/../../etc/passwd"):
        status, _, _ = http_request(addr, path)
        if status != 404:
            fail("%s: expected 404, got %d" % (path, status))
    health = json.loads(http_request(addr, "/healthz")[2])
    feed = health.get("feed", {})
    if feed.get("auth") is not True or "score" not in feed.get("types", []):
        fail("/healthz feed: %s" % feed)
    for key in ("fps", "frames_analyzed", "frames_decoded", "state"):
        if key not in health["streams"][0]:
            fail("/healthz stream without %s: %s" % (key, health["streams"][0]))
    if [m.get("name") for m in health.get("models", [])] != ["resnet18", "vit"] or \
            "video AUC of only" not in (health.get("caution") or ""):
        fail("/healthz models/caution: %s / %r" % (health.get("models"), health.get("caution")))
    print("HTTP: assets with content types, traversal and unknown paths 404, /healthz feed %s" % feed, flush=True)


class Cdp:
    """Minimal Chrome DevTools Protocol client over one page's WebSocket."""

    def __init__(self, ws):
        self.ws = ws
        self.next_id = 0
        self.pending = {}
        self.exceptions = []
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self):
        async for raw in self.ws:
            m = json.loads(raw)
            if "id" in m:
                fut = self.pending.pop(m["id"], None)
                if fut and not fut.done():
                    fut.set_result(m)
            elif m.get("method") == "Runtime.exceptionThrown":
                self.exceptions.append(m["params"]["exceptionDetails"])

    async def call(self, method, params=None, timeout=30):
        self.next_id += 1
        fut = asyncio.get_event_loop().create_future()
        self.pending[self.next_id] = fut
        await self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params or {}}))
        m = await asyncio.wait_for(fut, timeout)
        if "error" in m:
            fail("%s: %s" % (method, m["error"]))
        return m["result"]

    async def eval(self, expr):
        r = await self.call("Runtime.evaluate", {"expression": expr, "returnByValue": True})
        if "exceptionDetails" in r:
            fail("evaluate threw: %s" % r["exceptionDetails"])
        return r["result"].get("value")


# Everything the checks look at, read from the DOM in one go.
PAGE_STATE = r"""!document.getElementById('feed') || !document.getElementById('tracks-note') ? 'null' : JSON.stringify({
  feed: document.getElementById('feed').dataset.state,
  feedText: document.getElementById('feed').textContent,
  note: document.getElementById('tracks-note').hidden ? '' : document.getElementById('tracks-note').textContent,
  caution: document.getElementById('caution') && !document.getElementById('caution').hidden
    ? document.getElementById('caution').textContent : '',
  streams: Object.fromEntries([...document.querySelectorAll('#streams tbody tr')].map(r => [r.dataset.stream, {
    state: r.querySelector('td.state span').dataset.state,
    reason: r.querySelector('.reason').textContent,
    fps: r.querySelector('td.fps').textContent}])),
  tracks: [...document.querySelectorAll('#tracks .track')].map(t => ({stream: t.dataset.stream,
    track: t.dataset.track, points: t.querySelector('polyline').points.numberOfItems})),
  alerts: [...document.querySelectorAll('#alerts li')].map(a => {
    const img = a.querySelector('img');
    return {stream: a.dataset.stream, track: a.dataset.track, type: a.dataset.type,
            src: img ? img.getAttribute('src') : null, width: img && img.complete ? img.naturalWidth : 0};
  }),
  injected: typeof window.__xss !== 'undefined' || document.querySelectorAll('#streams img, #tracks img').length > 0,
})"""


async def page_state(cdp):
    return json.loads(await cdp.eval(PAGE_STATE))


async def wait_for(cdp, what, pred, timeout):
    deadline = time.time() + timeout
    st = None
    while time.time() < deadline:
        st = await page_state(cdp)
        if cdp.exceptions:
            fail("JavaScript exception on the page: %s" % cdp.exceptions[0])
        if st is not None and st["injected"]:
            fail("markup from an event became HTML on the page:\n%s" % json.dumps(st, indent=1))
        if st is not None and pred(st):  # None: the page is still loading
            return st
        await asyncio.sleep(1)
    fail("timed out waiting for %s; page state:\n%s" % (what, json.dumps(st, indent=1)))


def start_chromium(chromium, work):
    profile = tempfile.mkdtemp(prefix="chromium-", dir=work)
    log = open(os.path.join(work, "chromium.log"), "w")
    p = subprocess.Popen([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                          "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
                          "--disable-extensions", "--disable-sync", "--mute-audio",
                          "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
                          "--user-data-dir=" + profile, "--window-size=1280,900", "about:blank"],
                         stdout=subprocess.DEVNULL, stderr=log)
    port_file = os.path.join(profile, "DevToolsActivePort")
    deadline = time.time() + 60
    while time.time() < deadline:
        if p.poll() is not None:
            fail("chromium exited with %s:\n%s" % (p.returncode, open(os.path.join(work, "chromium.log")).read()[-2000:]))
        if os.path.exists(port_file):
            lines = open(port_file).read().split()
            if lines:
                port = int(lines[0])
                targets = json.loads(urllib.request.urlopen("http://127.0.0.1:%d/json/list" % port, timeout=10).read())
                pages = [t for t in targets if t.get("type") == "page"]
                if pages:
                    return p, profile, pages[0]["webSocketDebuggerUrl"]
        time.sleep(0.2)
    p.kill()
    fail("chromium did not open its DevTools port")


async def run(args, work, screenshot):
    dfmon, rtsp_bin, models, real_clip, fake_clip = args[:5]
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    # The RTSP server starts only once the page is connected: the fake stream then goes live and raises
    # its alert (about 2 s later; the looping face keeps one track, so one alert) while the page watches.
    rtsp_port = free_port()
    rtsp, rtsp_url = None, "rtsp://127.0.0.1:%d/cam" % rtsp_port
    config = os.path.join(work, "dashboard.yaml")
    with open(config, "w") as f:
        f.write("""server: {listen: "127.0.0.1:0", token: "%s"}
models: {dir: "%s"}
scoring: {fps: 5}
reconnect: {initial_s: 0.5, max_s: 2}
streams:
  - {id: rtsp-fake, uri: "%s", transport: tcp}
  - {id: file-real, uri: "file://%s", loop: true}
  - {id: evil, uri: "%s", reconnect: {max_attempts: 1}}
sinks:
  - {type: websocket, types: [alert_start, alert_end, stream_state, score]}
""" % (TOKEN, os.path.abspath(models), rtsp_url, os.path.abspath(real_clip), EVIL_URI))
    proc, addr = start_dfmon(dfmon, config, os.path.join(work, "dfmon.log"))
    chrome = None
    profile = None
    try:
        check_http(addr)
        chrome, profile, ws_url = start_chromium(chromium, work)
        async with websockets.connect(ws_url, max_size=None, open_timeout=20) as ws:
            cdp = Cdp(ws)
            await cdp.call("Runtime.enable")
            await cdp.call("Page.enable")
            await cdp.call("Emulation.setDeviceMetricsOverride",
                           {"width": 1200, "height": 820, "deviceScaleFactor": 1, "mobile": False})

            # Without ?token= the page cannot open the feed and says why.
            await cdp.call("Page.navigate", {"url": "http://%s/" % addr})
            await wait_for(cdp, "the 'needs token' notice", lambda s: s["feed"] == "failed" and "token" in s["note"], 30)
            print("without ?token=: the page says the feed needs a token", flush=True)

            await cdp.call("Page.navigate", {"url": "http://%s/?token=%s" % (addr, urllib.parse.quote(TOKEN, safe=""))})
            st = await wait_for(cdp, "the feed to connect while rtsp-fake has no server",
                                lambda s: s["feed"] == "live" and s["streams"].get("rtsp-fake", {}).get("state") in ("connecting", "retrying"), 60)
            print("feed connected; rtsp-fake %s: %r" % (st["streams"]["rtsp-fake"]["state"], st["streams"]["rtsp-fake"]["reason"][:80]), flush=True)
            # The bundled models are near chance on real deepfakes (their cards): the page says so by the alerts.
            if "video AUC of only" not in st["caution"]:
                fail("no model-quality caution on the page: %r" % st["caution"])
            print("caution shown: %r" % st["caution"][:90], flush=True)
            rtsp, _, _ = start_rtsp(rtsp_bin, fake_clip, rtsp_port)
            t0 = time.time()

            def ready(s):
                live = all(s["streams"].get(n, {}).get("state") == "live" for n in ("rtsp-fake", "file-real"))
                sparks = all(any(t["stream"] == n and t["points"] >= 3 for t in s["tracks"]) for n in ("rtsp-fake", "file-real"))
                thumb = any(a["stream"] == "rtsp-fake" and a["width"] > 0 for a in s["alerts"])
                return s["feed"] == "live" and live and sparks and thumb

            st = await wait_for(cdp, "both streams live with sparklines and an alert with its thumbnail", ready, 150)
            alert = [a for a in st["alerts"] if a["stream"] == "rtsp-fake" and a["width"] > 0][0]
            print("after %.0f s: streams %s; %d track rows (%s); alert %s" % (
                time.time() - t0, {k: v["state"] for k, v in st["streams"].items()}, len(st["tracks"]),
                ", ".join("%s/%s:%d pts" % (t["stream"], t["track"], t["points"]) for t in st["tracks"][:4]),
                alert), flush=True)
            if not alert["src"].startswith("thumb/" + urllib.parse.quote(TOKEN, safe="") + "/rtsp-fake/"):
                fail("thumbnail URL does not carry the token segment: %s" % alert["src"])
            real_alerts = [a for a in st["alerts"] if a["stream"] == "file-real"]
            if real_alerts:
                print("note: the real clip raised %d alert(s)" % len(real_alerts), flush=True)

            # The failing stream's reason holds the markup from its URI: shown as text, never parsed.
            st = await wait_for(cdp, "the evil stream's reason", lambda s: "<img/src=x" in s["streams"].get("evil", {}).get("reason", ""), 60)
            if st["injected"]:
                fail("markup from an event was rendered as HTML")
            print("evil stream: %s, reason shown as text: %r" % (st["streams"]["evil"]["state"], st["streams"]["evil"]["reason"][:90]), flush=True)

            # A page opened after the alert still lists it: /recent (token-protected) holds the last
            # alerts, and the page loads it when the feed opens.
            status, ctype, _ = http_request(addr, "/recent")
            if status != 404:
                fail("/recent without the token: expected 404, got %d" % status)
            status, ctype, body = http_request(addr, "/recent/" + urllib.parse.quote(TOKEN, safe=""))
            recent = json.loads(body) if status == 200 else {}
            starts = [e for e in recent.get("events", []) if e.get("type") == "alert_start" and e.get("stream") == "rtsp-fake"]
            if status != 200 or not ctype.startswith("application/json") or not starts:
                fail("/recent/<token>: %d %s, events %s" % (status, ctype, recent))
            last_seq = max(e["seq"] for e in recent["events"])
            await cdp.call("Page.navigate", {"url": "http://%s/?token=%s" % (addr, urllib.parse.quote(TOKEN, safe=""))})
            t1 = time.time()
            st = await wait_for(cdp, "the earlier alert listed on a freshly opened page",
                                lambda s: s["feed"] == "live" and any(a["stream"] == "rtsp-fake" and a["width"] > 0 for a in s["alerts"]), 30)
            later = json.loads(http_request(addr, "/recent/" + urllib.parse.quote(TOKEN, safe=""))[2])["events"]
            print("reopened page: %d alert entr%s after %.1f s (/recent had %d event(s), seq <= %d; %d new since)" % (
                len(st["alerts"]), "y" if len(st["alerts"]) == 1 else "ies", time.time() - t1, len(recent["events"]),
                last_seq, sum(1 for e in later if e["seq"] > last_seq)), flush=True)
            if len(st["alerts"]) > len(later):
                fail("the page lists %d alerts but the log holds %d events (duplicates?)" % (len(st["alerts"]), len(later)))

            if screenshot:
                await asyncio.sleep(45)  # some sparkline history makes a more telling picture
                shot = await cdp.call("Page.captureScreenshot", {"format": "png"}, timeout=60)
                data = base64.b64decode(shot["data"])
                with open(screenshot, "wb") as out:
                    out.write(data)
                print("screenshot: %s (%d KB)" % (screenshot, len(data) // 1024), flush=True)

            proc.send_signal(signal.SIGTERM)
            await wait_for(cdp, "the page to see the feed close", lambda s: s["feed"] == "closed", 30)
            rc = proc.wait(timeout=20)
            if rc != 0:
                fail("dfmon exited %d after SIGTERM" % rc)
            print("SIGTERM: the page shows the feed closed; dfmon exit 0", flush=True)
            if cdp.exceptions:
                fail("JavaScript exception on the page: %s" % cdp.exceptions[0])
            cdp.reader.cancel()
    finally:
        for p in (proc, rtsp, chrome):
            if p is not None and p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
        if profile:
            shutil.rmtree(profile, ignore_errors=True)


def main():
    args = sys.argv[1:]
    if len(args) < 6:
        print(__doc__)
        sys.exit(2)
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        print("SKIP: chromium is not installed", flush=True)
        sys.exit(77)
    work = args[5]
    os.makedirs(work, exist_ok=True)
    screenshot = args[args.index("--screenshot") + 1] if "--screenshot" in args else None
    asyncio.run(run(args, work, screenshot))
    print("PASS", flush=True)


if __name__ == "__main__":
    main()
