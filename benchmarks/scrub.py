"""Benchmark of ``Recorder.scrub`` (what ``bin/NAME check`` does to a config error's message):
a long secret against a 64-character one, with the scrub of twelve.runtime and with the
quadratic algorithm it replaced, in the same run (so the ratios are what to compare across
machines, not the absolute numbers).

    python benchmarks/scrub.py                  # a 120 KB secret, human-readable
    python benchmarks/scrub.py --size 2000 --json

The message is what a config error typically holds: a line of text quoting the start of the
secret (a value cut short by the message), as ``int(env.secret(...))`` would.
"""
from __future__ import annotations

import argparse
import json
import random
import string
import time

from twelve.runtime.config.env import NOT_SHOWN, SCRUB_PREFIX, Recorder

SHORT = 64


def old_scrub(secrets: set[str], text: str) -> str:
    """The algorithm before issue 12: every prefix length of every form tried (quadratic)."""
    forms = {form for secret in secrets
             for form in (secret, repr(secret)[1:-1], ascii(secret)[1:-1],
                          repr(secret.encode("utf-8", "replace"))[2:-1])}
    for form in sorted(forms, key=lambda form: (-len(form), form)):
        text = text.replace(form, NOT_SHOWN)
        shortest = min(len(form), SCRUB_PREFIX)
        for end in range(len(form) - 1, shortest - 1, -1):
            if form[:end] in text:
                text = text.replace(form[:end], NOT_SHOWN)
    return text


def new_scrub(secrets: set[str], text: str) -> str:
    recorder = Recorder({})
    recorder._secrets.update(secrets)
    return recorder.scrub(text)


def message(secret: str) -> str:
    return f"config/runtime.py:3: ValueError: invalid literal for int() with base 10: " \
           f"'{secret[:40]}...' (and the rest of the traceback)"


def best_of(scrub, secret: str, repeat: int) -> float:
    text = message(secret)
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        result = scrub({secret}, text)
        best = min(best, time.perf_counter() - started)
    assert secret[:SCRUB_PREFIX] not in result
    return best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=120_000, help="the long secret's length")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the best counts")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rng = random.Random(12)
    alphabet = string.ascii_letters + string.digits + "-_"
    long_secret = "".join(rng.choice(alphabet) for _ in range(args.size))
    short_secret = "".join(rng.choice(alphabet) for _ in range(SHORT))
    runs = {name: {"long": best_of(scrub, long_secret, args.repeat),
                   "short": best_of(scrub, short_secret, args.repeat)}
            for name, scrub in (("new", new_scrub), ("old", old_scrub))}
    result = {"benchmark": "scrub", "size": args.size, "short_size": SHORT, **runs,
              "new_long_over_short": runs["new"]["long"] / runs["new"]["short"],
              "old_long_over_short": runs["old"]["long"] / runs["old"]["short"],
              "speedup": runs["old"]["long"] / runs["new"]["long"]}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for name in ("old", "new"):
        run = runs[name]
        print(f"{name}: {args.size:,}-char secret {run['long'] * 1000:9.3f} ms, "
              f"{SHORT}-char {run['short'] * 1000:7.3f} ms, ratio "
              f"{run['long'] / run['short']:8.1f}x")
    print(f"speed-up on the {args.size:,}-char secret: {result['speedup']:.0f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
