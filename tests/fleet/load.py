"""A bounded client load, run inside a network namespace: GET / of every URL given, round
robin, until the stop file appears, MAX_SECONDS pass or MAX_REQUESTS are made; then writes what
it saw as JSON: per URL the count of answers, the failures (time and error) and the versions
seen in order (each change once).

    python load.py OUT STOP_FILE MAX_SECONDS MAX_REQUESTS URL...
"""
import json
import os
import sys
import time
import urllib.request


def main(out: str, stop_file: str, max_seconds: str, max_requests: str, *urls: str) -> None:
    seen = {url: {"ok": 0, "failures": [], "versions": []} for url in urls}
    deadline = time.monotonic() + float(max_seconds)
    started = time.monotonic()
    for count in range(int(max_requests)):
        if os.path.exists(stop_file) or time.monotonic() > deadline:
            break
        url = urls[count % len(urls)]
        record = seen[url]
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                version = response.read().decode().strip()
            record["ok"] += 1
            if not record["versions"] or record["versions"][-1] != version:
                record["versions"].append(version)
        except Exception as error:  # every kind of failure is what the test counts
            record["failures"].append([round(time.monotonic() - started, 2), repr(error)])
        time.sleep(0.01)  # a steady load, not a benchmark: the machine is shared
    with open(out + ".partial", "w") as f:
        json.dump(seen, f)
    os.rename(out + ".partial", out)


if __name__ == "__main__":
    main(*sys.argv[1:])
