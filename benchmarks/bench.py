"""Benchmark of twelve against PyInstaller (onedir), pex, shiv and a plain venv + pip, on the
example app (examples/hello), in one run: build (cold, warm, incremental, with the tar step),
size (with and without strip), launch → first HTTP 200, the control commands, serving under
wrk and memory — and twelve's targets from issue 7, each met or not.

    make bench          # everything (about 17 minutes on 2 cores)
    make bench-quick    # under 3 minutes: fewer repetitions, PyInstaller and pex skipped
    .venv/bin/python benchmarks/bench.py --quick --peers shiv,venv --out /tmp/results
    .venv/bin/python benchmarks/bench.py --quick --only control --out /tmp/results  # ~40 s

Writes benchmarks/results/latest.md, latest.json and latest.png (--out elsewhere). The peers
(pyinstaller, pex, shiv, pip) run from the benchmark's own venv, benchmarks/.venv, which the
make targets create; a peer missing there is skipped and the results say so.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from harness.plan import GROUPS, PEERS, plan_for  # noqa: E402
from harness.run import benchmark, summary  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="mode", action="store_const", const="quick",
                      help="under 3 minutes: fewer repetitions, PyInstaller and pex skipped")
    mode.add_argument("--smoke", dest="mode", action="store_const", const="smoke",
                      help="one iteration of each metric (the smoke test; use with --app tiny)")
    parser.set_defaults(mode="full")
    parser.add_argument("--app", choices=("hello", "reference", "tiny"), default="hello",
                        help="examples/hello (default), benchmarks/reference (issue 15's size "
                             "targets) or a generated tiny app (smoke test)")
    parser.add_argument("--peers", help=f"comma-separated subset of {','.join(PEERS)}")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(GROUPS)} "
                                       "(serving includes memory): measure only these; the "
                                       "tools they need are built once, untimed")
    parser.add_argument("--out", type=Path, default=HERE / "results",
                        help="where latest.md, latest.json and latest.png go "
                             "(default: benchmarks/results)")
    parser.add_argument("--tools", type=Path, default=HERE / ".venv" / "bin",
                        help="bin/ of the venv holding pip, pyinstaller, pex and shiv "
                             "(default: benchmarks/.venv/bin)")
    parser.add_argument("--work", type=Path, help="where the temporary workspace goes "
                        "(default: benchmarks/results/bench-*.tmp, removed afterwards)")
    parser.add_argument("--keep", action="store_true", help="keep the workspace (debugging)")
    parser.add_argument("--via", help="how the run was started, for the results "
                                      "(make sets it: `make bench`)")
    parser.add_argument("--diff", nargs="+", type=Path, metavar="JSON",
                        help="compare two runs instead of measuring: OLD.json [NEW.json] "
                             "(NEW defaults to benchmarks/results/latest.json), e.g. "
                             "--diff <(git show HEAD~1:benchmarks/results/latest.json)")
    args = parser.parse_args(argv)
    if args.diff:
        from harness.compare import compare
        if len(args.diff) > 2:
            parser.error("--diff takes OLD.json and optionally NEW.json")
        print(compare(args.diff[0], args.diff[1] if len(args.diff) == 2
                      else args.out / "latest.json"))
        return 0
    peers = tuple(p.strip() for p in args.peers.split(",")) if args.peers else None
    if peers and not set(peers) <= set(PEERS):
        parser.error(f"--peers: unknown peer in {args.peers!r}; choose from {', '.join(PEERS)}")
    only = tuple(g.strip() for g in args.only.split(",")) if args.only else None
    if only and not set(only) <= set(GROUPS):
        parser.error(f"--only: unknown group in {args.only!r}; choose from {', '.join(GROUPS)}")
    plan = plan_for(args.mode, peers, only)
    tools = args.tools if args.tools.is_dir() else None
    via = args.via or "python benchmarks/bench.py" + {"full": "", "quick": " --quick",
                                                      "smoke": " --smoke"}[args.mode]
    results = benchmark(plan, app=args.app, out=args.out, tools_bin=tools, via=via,
                        work=args.work, keep=args.keep, log=lambda line: print(line, flush=True))
    print(summary(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
