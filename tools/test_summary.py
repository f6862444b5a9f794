"""Prints, after `./dev.sh test`, how many tests each CTest entry ran and
passed, read from CTest's log: the cmocka suites, pytest's, node's."""
import re
import sys

PATTERNS = [
    (re.compile(r"^\[  PASSED  \] (\d+) test"), "passed"),
    (re.compile(r"^\[  FAILED  \] (\d+) test"), "failed"),
    (re.compile(r"^(?:=+ )?(?:.* )?(\d+) passed"), "passed"),
    (re.compile(r"(\d+) failed"), "failed"),
    (re.compile(r"(\d+) skipped"), "skipped"),
    (re.compile(r"^# pass (\d+)"), "passed"),
    (re.compile(r"^# fail (\d+)"), "failed"),
    (re.compile(r"^# skip (\d+)"), "skipped"),
]


def summary(log):
    counts, name = {}, None
    for line in open(log, errors="replace"):
        m = re.match(r"^\d+/\d+ Testing: (\S+)", line)
        if m:
            name = m.group(1)
            counts[name] = {}
            continue
        if name is None:
            continue
        for pattern, kind in PATTERNS:
            found = pattern.search(line.strip())
            if found and kind not in counts[name]:
                counts[name][kind] = int(found.group(1))
    return counts


def main():
    counts = summary(sys.argv[1])
    total = {}
    for name, c in counts.items():
        print(f"  {name:<22} " + ", ".join(f"{n} {k}" for k, n in sorted(c.items())))
        for k, n in c.items():
            total[k] = total.get(k, 0) + n
    print(f"  {'all':<22} " + ", ".join(f"{n} {k}" for k, n in sorted(total.items())))


if __name__ == "__main__":
    main()
