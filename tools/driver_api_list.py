#!/usr/bin/env python3
"""Derive the CUDA driver entry-point list from the vendor headers.

The committed list (csrc/common/driver_api.def) is the single source every
generated table expands from.  This tool (re)writes its symbols and versions,
keeping the hand-maintained policy column, and, with --check, verifies that the committed list still covers exactly what the
installed headers declare (run by the test suite), so a toolkit upgrade shows
up as a failing test rather than as silently missing entry points.

Pairing rule, checked against cuda.h for all 634 entry points of CUDA 13.0:
cudaTypedefs.h names each ABI version of a function as PFN_<base>_v<version>;
sorted by version, the i-th one is the symbol <base> (i = 0) or <base>_v<i+1>.
A `PFN_<base>_v<version>_ptsz`/`_ptds` typedef marks the per-thread-default-
stream twin of the newest plain symbol whose version is not newer.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

HEADERS = ("cudaTypedefs.h", "cudaProfilerTypedefs.h")
DECL_HEADERS = ("cuda.h", "cudaProfiler.h")


def declared_functions(include: Path) -> set[str]:
    out = set()
    for h in DECL_HEADERS:
        pp = subprocess.run(
            ["gcc", "-E", "-P", "-D__CUDA_API_VERSION_INTERNAL", "-x", "c", "-I", str(include), str(include / h)],
            check=True, capture_output=True, text=True).stdout
        out |= set(re.findall(r"CUresult\s+(?:__attribute__\(\([^)]*\)\)\s*)*(cu[A-Za-z0-9_]+)\s*\(", pp))
    return out


def entries(include: Path) -> list[tuple[str, str, int, str]]:
    """(symbol, base, version, variant) with variant LEGACY or PTDS."""
    versions: dict[str, set[tuple[int, str]]] = defaultdict(set)
    for h in HEADERS:
        text = (include / h).read_text()
        for base, ver, suffix in re.findall(r"PFN_(cu[A-Za-z0-9_]+?)_v(\d+)(_ptsz|_ptds)?\)", text):
            versions[base].add((int(ver), suffix))
    declared = declared_functions(include)
    rows = []
    for base in sorted(versions):
        plain = sorted(v for v, s in versions[base] if not s)
        for i, ver in enumerate(plain):
            sym = base if i == 0 else f"{base}_v{i + 1}"
            if sym not in declared:
                raise SystemExit(f"pairing rule broken: {sym} (v{ver}) is not declared")
            rows.append((sym, base, ver, "LEGACY"))
        for ver, suffix in sorted(versions[base]):
            if not suffix:
                continue
            # the twin belongs to the newest plain version not newer than itself
            i = max(k for k, v in enumerate(plain) if v <= ver)
            sym = (base if i == 0 else f"{base}_v{i + 1}") + suffix
            if sym not in declared:
                raise SystemExit(f"pairing rule broken: {sym} is not declared")
            rows.append((sym, base, ver, "PTDS"))
    covered = {r[0] for r in rows}
    if covered != declared:
        raise SystemExit(f"declared but not versioned: {sorted(declared - covered)}")
    return rows


def parse_def(path: Path) -> list[tuple[str, str, int, str]]:
    rows = []
    for m in re.finditer(r"^CU_FN\((\w+),\s*(\w+),\s*(\d+),\s*(\w+)", path.read_text(), re.M):
        rows.append((m.group(1), m.group(2), int(m.group(3)), m.group(4)))
    return rows


def render(rows, old_text: str) -> str:
    """The list for `rows`, keeping the header comment and every policy of `old_text`."""
    first = re.search(r"^CU_FN\(", old_text, re.M)
    header = old_text[:first.start()] if first else ""
    policy = dict(re.findall(r"^CU_FN\((\w+),[^)]*,\s*(\w+)\)", old_text, re.M))
    lines = [f"CU_FN({sym}, {base}, {ver}, {var}, {policy.get(sym, 'UNSUPPORTED')})" for sym, base, ver, var in rows]
    return header + "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--include", type=Path, default=Path("/usr/local/cuda/include"))
    ap.add_argument("--def-file", type=Path,
                    default=Path(__file__).resolve().parent.parent / "csrc/common/driver_api.def")
    ap.add_argument("--check", action="store_true", help="verify the committed list instead of writing it")
    args = ap.parse_args()
    rows = entries(args.include)
    if args.check:
        have = {r[:4] for r in parse_def(args.def_file)}
        want = set(rows)
        if have != want:
            print("missing:", sorted(want - have)[:20], "\nextra:", sorted(have - want)[:20])
            return 1
        print(f"{len(rows)} entry points match {args.include}")
        return 0
    old = args.def_file.read_text() if args.def_file.exists() else ""
    args.def_file.write_text(render(rows, old))
    print(f"wrote {len(rows)} entries to {args.def_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
