"""Instructions a published share costs the worker, counted by valgrind's callgrind.

The path of bench/worker_cpu.py (console shares already due, handed to
``workers.execution.execute_shares`` in groups of ``--group`` by one thread, with the worker's
own runtime and its call threads), counted in instructions of the worker's process: its own
code and every library's, not the kernel's and not PostgreSQL's. Counts repeat to within about
1 % from run to run, where CPU seconds on two shared cores move by 10-30 %, so a change of a
few per cent to the publishing path shows here first. Compare two versions of the code by
running it on each. Slow (everything runs about 50 times slower under valgrind): about three
minutes for the defaults. Needs valgrind (Debian's package of that name).

Each round plans its shares, publishes one group to warm up (connections, prepared
statements), then zeroes the counters, publishes the rest and has callgrind write what it
counted. The last line of standard output is one JSON object.

    python bench/worker_instructions.py [--shares 500] [--group 50] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import orjson

from bench.worker_cpu import publishing
from workers import execution

INSIDE = "FOLLOWTHROUGH_BENCH_UNDER_CALLGRIND"  # set for the process valgrind runs
DUMP = re.compile(rb"^desc: Trigger: dump (round-\d+)$.*?^summary: (\d+)$", re.M | re.S)


def callgrind(*args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(os.getpid())], check=True, capture_output=True)


def publish_rounds(args: argparse.Namespace) -> None:
    """Under valgrind: each round's shares published between a zeroing and a dump of the counters."""
    with publishing("bench-worker-instructions") as bench:
        for round_ in range(1, args.rounds + 1):
            groups = bench.due_groups(args.shares, args.group)
            execution.execute_shares(bench.rt, groups[0])
            callgrind("--zero")
            outcomes = [o for g in groups[1:] for o in execution.execute_shares(bench.rt, g).values()]
            callgrind("--dump", f"round-{round_}")
            if outcomes.count("share_sent") != args.shares:
                raise SystemExit(f"not every share was sent: {sorted(set(outcomes))}")
            print(f"round {round_}: {args.shares} shares published", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shares", type=int, default=500, help="shares a round (after the warm-up group)")
    parser.add_argument("--group", type=int, default=50, help="shares a group (the dispatcher's message size)")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if os.environ.get(INSIDE) == "1":
        publish_rounds(args)
        return
    missing = [tool for tool in ("valgrind", "callgrind_control") if shutil.which(tool) is None]
    if missing:
        raise SystemExit(f"{', '.join(missing)} not found: install valgrind (apt-get install valgrind)")
    with tempfile.TemporaryDirectory(prefix="bench-callgrind-") as out:
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}/callgrind.%p.out",
                   sys.executable, __file__, *sys.argv[1:]]
        print(f"running {args.rounds} round(s) of {args.shares} shares under callgrind (minutes)", flush=True)
        done = subprocess.run(command, env={**os.environ, INSIDE: "1"}, capture_output=True, check=False)
        sys.stdout.write(done.stdout.decode(errors="replace"))
        if done.returncode != 0:
            sys.stderr.write(done.stderr.decode(errors="replace")[-4000:])
            raise SystemExit(f"the run under callgrind failed (exit {done.returncode})")
        dumps = [DUMP.search(f.read_bytes()) for f in Path(out).glob("callgrind.*.out.*")]
    per_share = {m.group(1).decode(): int(m.group(2)) / args.shares for m in dumps if m is not None}
    per_share = dict(sorted(per_share.items()))
    if len(per_share) != args.rounds:
        raise SystemExit(f"callgrind wrote {len(per_share)} of {args.rounds} rounds' counts")
    for name, count in per_share.items():
        print(f"{name}: {count / 1e6:.3f} million instructions a share")
    best = min(per_share.values())
    print(f"worker instructions a share, best of {args.rounds}: {best / 1e6:.3f} million")
    print(orjson.dumps({"shares": args.shares, "group": args.group, "rounds": args.rounds,
                        "instructions_per_share": {k: round(v) for k, v in per_share.items()},
                        "best_instructions_per_share": round(best)}).decode())


if __name__ == "__main__":
    main()
