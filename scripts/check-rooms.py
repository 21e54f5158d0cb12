#!/usr/bin/env python3
"""Rooms of one concern: no Rust file holds more than 1,000 lines of non-test code.

Counts every `.rs` file under src/, crates/*/src, benches/ and tests/ (test-only files,
`tests.rs` and files under tests/, count nothing), leaving out `#[cfg(test)]` modules.
Prints the largest files; exits 1 naming each file over the limit.
"""
import os
import re
import sys

LIMIT = 1000
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def non_test_lines(path):
    lines = open(path, encoding="utf-8").read().split("\n")
    count = 0
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip() == "#[cfg(test)]":
            # Skip the item that follows: a `mod x;` line or a braced block.
            j = i + 1
            while j < len(lines) and lines[j].strip().startswith("#["):
                j += 1
            if j < len(lines) and lines[j].rstrip().endswith(";"):
                i = j + 1
                continue
            depth = 0
            opened = False
            while j < len(lines):
                depth += lines[j].count("{") - lines[j].count("}")
                opened = opened or "{" in lines[j]
                j += 1
                if opened and depth <= 0:
                    break
            i = j
            continue
        count += 1
        i += 1
    return count


def rust_files():
    for top in ("src", "benches", "crates"):
        for d, _, files in os.walk(os.path.join(ROOT, top)):
            for f in files:
                if not f.endswith(".rs") or f == "tests.rs" or f.endswith("_tests.rs"):
                    continue
                if os.sep + "tests" + os.sep in d + os.sep and top == "crates":
                    continue
                yield os.path.join(d, f)


def main():
    sizes = sorted(((non_test_lines(p), os.path.relpath(p, ROOT)) for p in rust_files()), reverse=True)
    for n, p in sizes[:10]:
        print(f"{n:6} {p}")
    over = [(n, p) for n, p in sizes if n > LIMIT]
    for n, p in over:
        print(f"{p}: {n} lines of non-test code (at most {LIMIT})", file=sys.stderr)
    sys.exit(1 if over else 0)


if __name__ == "__main__":
    main()
