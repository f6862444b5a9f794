"""Compares two mqd binaries, scenario by scenario, in interleaved runs:
the check that a change costs the hot path nothing it should not.

    python3 bench/compare.py OLD_MQD NEW_MQD [--reps N] [--seconds S]
                             [--scenarios ABC] [-- EXTRA MQD ARGS]

Each cell runs as bench/run.py runs it (a fresh server on a free loopback
port, pinned to CPU 0, the generator on CPU 1), alternating old and new. It
prints every run, then per figure the two medians and new/old. It writes
nothing: the history in docs/BENCHMARKS.md is written by hand from it."""
import json
import statistics
import sys

import run


def main():
    args = sys.argv[1:]
    extra = []
    if "--" in args:
        extra = args[args.index("--") + 1:]
        args = args[:args.index("--")]
    old, new = args[0], args[1]
    reps = int(args[args.index("--reps") + 1]) if "--reps" in args else 5
    seconds = int(args[args.index("--seconds") + 1]) if "--seconds" in args else 5
    scenarios = args[args.index("--scenarios") + 1] if "--scenarios" in args else "ABC"
    results = {}
    for scenario in scenarios:
        for rep in range(reps):
            for name, binary in (("old", old), ("new", new)):
                run.MQD = binary
                run.MQD_EXTRA = extra
                r = run.run_cell("mqd", scenario, seconds)
                results.setdefault((scenario, name), []).append(r)
                print(scenario, name, rep + 1, json.dumps(r), flush=True)
    print()
    print("| scenario | figure | old | new | new/old |")
    print("|---|---|---|---|---|")
    for scenario in scenarios:
        for key, label, higher in run.SCENARIOS[scenario][2]:
            o = statistics.median(r[key] for r in results[(scenario, "old")])
            n = statistics.median(r[key] for r in results[(scenario, "new")])
            print(f"| {scenario} | {label}{'' if higher else ' (lower is better)'} | "
                  f"{run.fmt(o)} | {run.fmt(n)} | {n / o:.3f} |")


if __name__ == "__main__":
    main()
