"""Start-up time of common commands: ``offramp --version``, ``offramp --help``, ``offramp runs list``.

Run (not a pytest module)::

    .venv/bin/python tests/benchmarks/bench_startup.py [--repeat N] [--source DIR] [--json]

Each measurement is the wall time of a fresh process, from spawn to exit, taken ``--repeat`` times (default 10) in
turns (each command once per round, so a slow moment of the machine falls on all of them). ``python -c pass`` with
the same interpreter is measured in the same rounds: the ratio to it says what offramp adds to starting Python.
``runs list`` runs in a throw-away OFFRAMP_HOME, initialized first (an empty store: the time is start-up and opening
the store, not listing).

By default the installed ``offramp`` (this venv's console script) is measured. ``--source DIR`` measures the code of
another tree instead, e.g. the previous commit, to compare before and after a change::

    mkdir -p /tmp/base && git archive HEAD | tar -x -C /tmp/base
    .venv/bin/python tests/benchmarks/bench_startup.py --source /tmp/base

(the tree's ``core``, ``credentials`` and ``plugins`` are imported as ``offramp.core`` and the rest, in place of
the editable install; the installed distribution's entry points are used by both).

Prints, per command, the median and the minimum in ms and the median's ratio to ``python -c pass``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OFFRAMP = Path(sys.executable).with_name("offramp")  # the console script of this venv

# Runs `offramp ARGS` from the tree DIR (argv[1]): the editable install's finder is removed, so that `offramp.core`
# and the rest resolve to DIR's directories, linked under a namespace package `offramp` in DIR/.bench-src.
FROM_SOURCE = """\
import sys
root = sys.argv.pop(1)
sys.meta_path[:] = [f for f in sys.meta_path if "Editable" not in getattr(f, "__name__", type(f).__name__)]
sys.path.insert(0, root)
from offramp.core.cli import main
sys.argv[0] = "offramp"
sys.exit(main())
"""

COMMANDS = {"--version": ["--version"], "--help": ["--help"], "runs list": ["runs", "list"]}


def _source_root(tree: Path) -> Path:
    """A directory holding ``offramp/{core,credentials,plugins}`` linked to ``tree``'s directories."""
    root = Path(tempfile.mkdtemp(prefix="offramp-bench-src-"))
    (root / "offramp").mkdir()
    for part in ("core", "credentials", "plugins"):
        (root / "offramp" / part).symlink_to((tree / part).resolve())
    return root


def _offramp(source: Path | None) -> list[str]:
    if source is None:
        return [str(OFFRAMP)]
    return [sys.executable, "-c", FROM_SOURCE, str(source)]


def _wall(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr.decode()}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--source", type=Path, help="measure the code of this tree instead of the installed one")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    source = _source_root(args.source) if args.source else None
    offramp = _offramp(source)
    with tempfile.TemporaryDirectory(prefix="offramp-bench-home-") as home:
        env = {key: value for key, value in os.environ.items() if not key.startswith("OFFRAMP_")}
        env["OFFRAMP_HOME"] = home
        _wall([*offramp, "init"], env)
        measured = {"python -c pass": [sys.executable, "-c", "pass"]}
        measured |= {f"offramp {name}": [*offramp, *argv] for name, argv in COMMANDS.items()}
        for command in measured.values():  # warm the OS's file cache, not measured
            _wall(command, env)
        times: dict[str, list[float]] = {name: [] for name in measured}
        for _ in range(args.repeat):
            for name, command in measured.items():
                times[name].append(_wall(command, env))

    baseline = statistics.median(times["python -c pass"])
    figures = {
        name: {
            "median_ms": round(statistics.median(values) * 1000, 1),
            "min_ms": round(min(values) * 1000, 1),
            "ratio_to_python": round(statistics.median(values) / baseline, 1),
        }
        for name, values in times.items()
    }
    if args.json:
        print(json.dumps({"repeat": args.repeat, "source": str(args.source or "installed"), "figures": figures}))
        return
    print(f"{args.repeat} runs each, code: {args.source or 'installed offramp'}")
    print(f"{'command':<24} {'median ms':>10} {'min ms':>8} {'x python':>9}")
    for name, figure in figures.items():
        print(f"{name:<24} {figure['median_ms']:>10} {figure['min_ms']:>8} {figure['ratio_to_python']:>9}")


if __name__ == "__main__":
    main()
