"""The console in a real browser: headless Chromium (Debian's, driven by Playwright for Python)
loads tests/browser/console.html from a local origin the API answers CORS for and runs the PSA
tab's calls against the API; then the same page from another origin, which the browser must not
let read the API. Prints one JSON object with what the page saw; tests/tests/it/browser.rs checks it.

Usage: console.py API_BASE JWT ALLOWED_PORT OTHER_PORT
"""

import functools
import http.server
import json
import os
import shutil
import sys
import threading

from playwright.sync_api import sync_playwright

HERE = os.path.dirname(os.path.abspath(__file__))


def serve(port):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=HERE)
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main():
    api, jwt, allowed, other = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if not chromium:
        sys.exit("console.py: no chromium on PATH (scripts/install.sh installs Debian's)")
    servers = [serve(allowed), serve(other)]
    result = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{allowed}/console.html")
        result["console"] = page.evaluate("([api, jwt]) => consoleFlow(api, jwt)", [api, jwt])
        result["userAgent"] = page.evaluate("navigator.userAgent")
        other_page = browser.new_page()
        other_page.goto(f"http://127.0.0.1:{other}/console.html")
        result["otherOrigin"] = other_page.evaluate(
            "([api, jwt]) => readable(api, jwt)", [api, jwt]
        )
        browser.close()
    for s in servers:
        s.shutdown()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
