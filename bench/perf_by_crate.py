"""Groups `perf report --sort dso,sym --stdio` self-time lines by crate (or library).

Reads the report on stdin and prints one line per group, largest first: the share of samples,
and the group's top three functions. Rust symbols are grouped by their first path segment
(`<h2::proto::X as Y>::poll` -> h2), C++ RocksDB symbols as rocksdb, the kernel and C
libraries by binary.
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict

LINE = re.compile(r"^\s*([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*)$")


def group(dso: str, kind: str, symbol: str) -> str:
    if kind == "k" or dso.startswith("[kernel"):
        return "kernel (syscalls, TCP, fsync, scheduling)"
    if dso.startswith("libc") or dso.startswith("ld-linux"):
        return "libc (memcpy, malloc, ...)"
    if dso.startswith("libstdc++") or dso.startswith("libgcc"):
        return "libstdc++"
    name = symbol.lstrip("<&*").removeprefix("_<").removeprefix("dyn ")
    if name.startswith("0x") or not name:
        return f"{dso} (unresolved)"
    if name.startswith("rocksdb::") or "rocksdb" in name.split("::", 1)[0]:
        return "rocksdb (C++)"
    head = re.split(r"::|<| as ", name, maxsplit=1)[0]
    if head in ("core", "alloc", "std"):
        return f"{head} (Rust std: drops, allocation, formatting)"
    return head or f"{dso} (unresolved)"


def main() -> None:
    shares: dict[str, float] = defaultdict(float)
    tops: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for line in sys.stdin:
        match = LINE.match(line)
        if not match:
            continue
        percent, dso, kind, symbol = match.groups()
        key = group(dso, kind, symbol.strip())
        shares[key] += float(percent)
        tops[key].append((float(percent), symbol.strip()[:100]))
    for key, share in sorted(shares.items(), key=lambda item: -item[1]):
        if share < 0.3:
            continue
        print(f"{share:6.2f}%  {key}")
        for percent, symbol in sorted(tops[key], reverse=True)[:3]:
            print(f"           {percent:5.2f}%  {symbol}")


if __name__ == "__main__":
    main()
