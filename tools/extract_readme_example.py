#!/usr/bin/env python3
"""Writes the library example of README.md to a C++ source file: the first
```cpp block under the "## Using the library" heading. The build compiles it
and the integration suite runs it (tests/integration/test_readme_example.sh),
so the README's example and what is tested cannot diverge.

Usage: extract_readme_example.py README.md OUT.cpp"""
import sys


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    lines = open(sys.argv[1], encoding="utf-8").read().split("\n")
    try:
        start = next(i for i, l in enumerate(lines) if l.strip() == "## Using the library")
    except StopIteration:
        print(f"{sys.argv[1]}: no '## Using the library' heading", file=sys.stderr)
        return 1
    block, inside = [], False
    for l in lines[start + 1:]:
        if not inside and l.startswith("## "):
            break  # the next section: the heading has no cpp block
        if not inside and l.strip() == "```cpp":
            inside = True
            continue
        if inside and l.strip() == "```":
            break
        if inside:
            block.append(l)
    if not block:
        print(f"{sys.argv[1]}: no ```cpp block under '## Using the library'", file=sys.stderr)
        return 1
    with open(sys.argv[2], "w", encoding="utf-8") as out:
        out.write(f"// Generated from {sys.argv[1]} (\"Using the library\") by tools/extract_readme_example.py.\n")
        out.write("\n".join(block) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
