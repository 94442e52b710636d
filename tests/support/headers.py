#!/usr/bin/env python3
"""Prints the headers under include/ that the header self-check compiles on
their own, one per line (tests/meson.build generates a translation unit for
each).

A part's definitions header, <part>/detail/<name>_impl.hpp, is the end of one
public header: it includes that header first, and that header includes it
last. Compiled on its own it is the same translation unit as its public
header's, so it is checked through that one; this script verifies the
pairing (and fails, failing meson's configure step, when an _impl.hpp is not
included by exactly one header, last, or does not include it first).

Usage: headers.py SOURCE_ROOT"""
import pathlib
import re
import sys


def includes(path):
    return re.findall(r'^#include "(bulkhead/[^"]+)"', path.read_text(encoding="utf-8"), re.M)


def main():
    inc = pathlib.Path(sys.argv[1]) / "include"
    headers = sorted(str(p.relative_to(inc)) for p in inc.rglob("*.hpp"))
    checked, problems = [], []
    for h in headers:
        if not h.endswith("_impl.hpp"):
            checked.append(h)
            continue
        users = [u for u in headers if h in includes(inc / u) and u != h]
        if len(users) != 1:
            problems.append(f"{h}: included by {users or 'no header'}; an _impl.hpp completes exactly one header")
            continue
        own = includes(inc / h)
        if not own or own[0] != users[0]:
            problems.append(f"{h}: its first #include must be {users[0]}, the header it completes")
        if includes(inc / users[0])[-1] != h:
            problems.append(f"{users[0]}: must include {h} last (after its declarations)")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    print("\n".join(checked))
    return 0


if __name__ == "__main__":
    sys.exit(main())
