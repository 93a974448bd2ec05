"""Time and peak memory of ledger.json_input's parse_json on what costs it the most (issue #15).

    python scripts/bench_json_input.py [--rounds 3] [--against REV] [--cases a,b]

Each measurement runs in a fresh interpreter (its peak memory is its own): the document
is read from a file written beforehand, then one call is timed, and the peak resident
size it added is read (``VmHWM`` from ``/proc/self/status`` after the call less before).
The cases:

- ``wide_list1``, ``wide_dict``, ``wide_list0``: 32 MiB bodies (the largest limit JSON is
  read under) of ``[1]``, ``{}`` or ``[]`` repeated in one array: millions of small
  shallow containers;
- ``ndjson``: 32 MiB of realistic partner records, one a line, through parse_ndjson (as
  ``POST /v1/submissions`` reads an NDJSON body);
- ``record_1k``: one 1 KB record, the common case (the median of 2,000 calls, per call);
- ``deep_array``, ``deep_object``: the attacks, 100,000 deep (``[`` … ``]`` and
  ``{"a":`` … ``}``), which must be refused.

``--against REV`` also measures ``ledger/json_input.py`` as it was at REV (``git show``
into a temporary module, never into the tree), interleaved with the current one round by
round, the order alternating. A host reference (a fixed pure-Python loop, timed in each
round) is printed beside, to compare runs on other machines. Medians over the rounds.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LIMIT = 32 << 20
CASES = ("wide_list1", "wide_dict", "wide_list0", "ndjson", "record_1k", "deep_array",
         "deep_object")


def record(i: int, pad: int = 0) -> dict[str, Any]:
    """A partner record as README shows one (bike share), ``pad`` bytes of details more."""
    details: dict[str, Any] = {"bike": f"B-{i % 5000}", "dock_from": "D-17", "dock_to": "D-42"}
    if pad:
        details["route"] = [[round(31.2304 + k * 1e-4, 4), round(121.4737 + k * 1e-4, 4)]
                            for k in range(pad // 20)]
    return {"record_id": f"greenbike-{i:09d}", "citizen": f"c_{i % 100_000:06d}",
            "behaviour": "CYCLING", "quantity": 3200 + i % 997,
            "occurred_at": "2026-12-04T08:10:00+08:00", "ended_at": "2026-12-04T08:26:00+08:00",
            "details": details}


def document(case: str) -> bytes:
    if case in ("wide_list1", "wide_dict", "wide_list0"):
        piece = {"wide_list1": b"[1]", "wide_dict": b"{}", "wide_list0": b"[]"}[case]
        return b"[" + b",".join([piece] * ((LIMIT - 2) // (len(piece) + 1))) + b"]"
    if case == "ndjson":
        lines: list[bytes] = []
        size, i = 0, 0
        while True:
            line = json.dumps(record(i), separators=(",", ":")).encode()
            if size + len(line) + 1 > LIMIT:
                return b"\n".join(lines) + b"\n"
            lines.append(line)
            size, i = size + len(line) + 1, i + 1
    if case == "record_1k":
        doc = json.dumps(record(1, pad=700)).encode()
        assert 900 <= len(doc) <= 1100, len(doc)
        return doc
    if case == "deep_array":
        return b"[" * 100_000 + b"]" * 100_000
    if case == "deep_object":
        return b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    raise ValueError(case)


def load(impl: str) -> Any:
    if impl == "current":
        import ledger.json_input

        return ledger.json_input
    spec = importlib.util.spec_from_file_location("json_input_old", impl)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def peak_kb() -> int:
    """This process's peak resident size: VmHWM, which starts afresh at exec (``ru_maxrss``
    carries the parent's peak over an exec, and the parent built every document)."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure_one(impl: str, case: str, path: str) -> dict[str, Any]:
    """In the child: one case (its document read from ``path``), one implementation."""
    from ledger.errors import LedgerError

    module = load(impl)
    doc = Path(path).read_bytes()
    if case == "ndjson":
        def call() -> Any:
            return module.parse_ndjson(doc, field="body", max_bytes=LIMIT)
    else:
        def call() -> Any:
            return module.parse_json(doc, field="body", max_bytes=LIMIT)
    before = peak_kb()
    started = time.perf_counter()
    try:
        value = call()
        outcome = f"accepted ({len(value)} items)" if isinstance(value, list | dict) else "accepted"
    except LedgerError as exc:
        outcome = f"refused: {exc.message}"
    seconds = time.perf_counter() - started
    peak_mb = (peak_kb() - before) / 1024
    if case == "record_1k":  # the one call above warmed up; now the per-call median
        times = []
        for _ in range(2000):
            t = time.perf_counter()
            call()
            times.append(time.perf_counter() - t)
        seconds = statistics.median(times)
    return {"seconds": seconds, "peak_mb": peak_mb, "outcome": outcome, "bytes": len(doc)}


def host_reference() -> float:
    """Seconds for a fixed pure-Python loop: a yardstick of this host's speed."""
    started = time.perf_counter()
    total = 0
    for i in range(5_000_000):
        total += i * i % 7
    assert total
    return time.perf_counter() - started


def child(impl: str, case: str, path: Path) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, "--child", impl, "--case", case,
                           "--doc", str(path)],
                          cwd=ROOT, capture_output=True, text=True, check=False, timeout=600)
    if done.returncode:
        return {"seconds": float("nan"), "peak_mb": float("nan"),
                "outcome": f"exit status {done.returncode}: {done.stderr.strip()[-300:]}", "bytes": 0}
    return json.loads(done.stdout.strip().splitlines()[-1])


def show(seconds: float, case: str) -> str:
    return f"{seconds * 1e6:9.1f} µs" if case == "record_1k" else f"{seconds:9.3f} s "


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--against", help="a git revision whose ledger/json_input.py to compare")
    parser.add_argument("--cases", default=",".join(CASES), help=f"of {', '.join(CASES)}")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--doc", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure_one(args.child, args.case, args.doc)))
        return 0
    cases = [c for c in args.cases.split(",") if c]
    impls = ["current"]
    with tempfile.TemporaryDirectory() as tmp:
        names = {"current": "current"}
        docs = {case: Path(tmp) / f"{case}.json" for case in cases}
        for case, path in docs.items():  # built once, read whole by each child: no other peak
            path.write_bytes(document(case))
        if args.against:
            old = Path(tmp) / "json_input_old.py"
            old.write_bytes(subprocess.run(["git", "show", f"{args.against}:ledger/json_input.py"],
                                           cwd=ROOT, capture_output=True, check=True).stdout)
            impls.append(str(old))
            names[str(old)] = f"at {args.against}"
        results: dict[tuple[str, str], list[dict[str, Any]]] = {}
        reference: list[float] = []
        for n in range(args.rounds):
            reference.append(host_reference())
            for case in cases:
                for impl in (impls if n % 2 == 0 else impls[::-1]):
                    got = child(impl, case, docs[case])
                    results.setdefault((impl, case), []).append(got)
                    print(f"round {n + 1} {case:11} {names[impl]:14} {show(got['seconds'], case)}"
                          f" peak +{got['peak_mb']:7.0f} MB  {got['outcome'][:70]}", flush=True)
        print(f"\nPython {sys.version.split()[0]}, {os.cpu_count()} CPUs; host reference "
              f"(5,000,000-step pure-Python loop): median {statistics.median(reference):.3f} s "
              f"({', '.join(f'{r:.3f}' for r in reference)})")
        print(f"medians of {args.rounds} interleaved rounds (record_1k: per call, of 2,000)\n")
        header = f"{'case':12}" + "".join(f"{names[i]:>32}" for i in impls)
        print(header + "\n" + "-" * len(header))
        for case in cases:
            row = f"{case:12}"
            for impl in impls:
                runs = results[(impl, case)]
                seconds = statistics.median(r["seconds"] for r in runs)
                peak = statistics.median(r["peak_mb"] for r in runs)
                row += f"{show(seconds, case)} +{peak:6.0f} MB".rjust(32)
            print(row)
        for case in cases:
            outcomes = {names[i]: results[(i, case)][0]["outcome"][:60] for i in impls}
            print(f"  {case}: " + "; ".join(f"{k}: {v}" for k, v in outcomes.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
