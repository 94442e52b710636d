#!/usr/bin/env python3
"""Where the library's code is: non-comment, non-blank lines of C++ under
include/bulkhead (header code, usable without a link step) and under src/
(compiled into libbulkhead-core and libbulkhead-libvirt), per part.

A line counts when, with // and /* */ comments removed, something other
than whitespace is left. docs/architecture.md quotes the output.

Usage: python3 tools/count_lines.py [--rev REV]   (REV: a git revision; default the work tree)"""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def files(rev):
    if rev:
        out = subprocess.run(["git", "-C", ROOT, "ls-tree", "-r", "--name-only", rev, "include", "src"],
                             check=True, capture_output=True, text=True).stdout.split()
    else:
        out = []
        for top in ("include", "src"):
            for d, _, names in os.walk(os.path.join(ROOT, top)):
                out += [os.path.relpath(os.path.join(d, n), ROOT) for n in names]
    return sorted(p for p in out if p.endswith((".hpp", ".cpp", ".h")))


def text(rev, path):
    if rev:
        return subprocess.run(["git", "-C", ROOT, "show", f"{rev}:{path}"], check=True, capture_output=True,
                              text=True).stdout
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def code_lines(src):
    # Strings first (so a // inside one is not a comment), then comments.
    s = re.sub(r'R"\((?:.|\n)*?\)"', lambda m: '""' + "\n" * m.group(0).count("\n"), src)
    s = re.sub(r'"(?:\\.|[^"\\\n])*"', '""', s)
    s = re.sub(r"'(?:\\.|[^'\\\n])*'", "''", s)
    s = re.sub(r"/\*(?:.|\n)*?\*/", lambda m: "\n" * m.group(0).count("\n"), s)
    s = re.sub(r"//[^\n]*", "", s)
    return sum(1 for line in s.split("\n") if line.strip())


def part(path):
    p = path.split("/")
    if p[0] == "include":
        rest = p[2:]  # after include/bulkhead
        if rest[0] in ("ledger", "colocation", "accounting", "export"):
            return rest[0]
        if rest[0] == "backend":
            return "backend/" + rest[1] if len(rest) > 2 else "backend (interface, shared)"
        return "vocabulary (units, error, model, detail)"
    rest = p[1:]
    if rest[0] == "backend":
        return "backend/" + rest[1] if len(rest) > 2 else "backend (interface, shared)"
    return rest[0]


def main():
    rev = None
    if len(sys.argv) == 3 and sys.argv[1] == "--rev":
        rev = sys.argv[2]
    elif len(sys.argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    rows = {}
    for f in files(rev):
        n = code_lines(text(rev, f))
        where = "include" if f.startswith("include/") else "src"
        rows.setdefault(part(f), {"include": 0, "src": 0})[where] += n
    tot = {"include": sum(r["include"] for r in rows.values()), "src": sum(r["src"] for r in rows.values())}
    all_ = tot["include"] + tot["src"]
    print(f"non-comment, non-blank C++ lines{' at ' + rev if rev else ''}")
    print(f"{'part':44} {'include/':>9} {'src/':>7}")
    for k in sorted(rows):
        print(f"{k:44} {rows[k]['include']:>9} {rows[k]['src']:>7}")
    print(f"{'total':44} {tot['include']:>9} {tot['src']:>7}")
    print(f"header code: {tot['include']} of {all_} lines, {100 * tot['include'] / all_:.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
