"""Shared by the benchmark scripts: their command line and their section of docs/benchmarks.md.

Each script owns one section between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`;
`--write FILE` replaces only that section, so the scripts can run in any order.
"""
import os


def parse_args(argv):
    """(positional arguments, the --write path or None)."""
    positional, write, i = [], None, 0
    while i < len(argv):
        if argv[i] == "--write" and i + 1 < len(argv):
            write = argv[i + 1]
            i += 2
        else:
            positional.append(argv[i])
            i += 1
    return positional, write


def write_section(path, name, text):
    begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    doc = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
    block = f"{begin}\n{text}\n{end}"
    if begin in doc and end in doc:
        head, rest = doc.split(begin, 1)
        doc = head + block + rest.split(end, 1)[1]
    else:
        doc = doc.rstrip("\n") + "\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(doc)
