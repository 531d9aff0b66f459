"""Python opcodes a published share costs the worker, by function: a profile that does not
wobble and names Python functions (``bench-worker-instructions`` counts the whole process,
and its counts name C functions only).

The path of bench/worker_cpu.py (console shares already due, handed to
``workers.execution.execute_shares`` in groups of ``--group`` by one thread, with the worker's
own runtime and its call threads), traced with ``sys.settrace`` and ``f_trace_opcodes`` on every
thread: each opcode the interpreter runs is counted against the function running it (self),
and each call's opcodes, from its start to its return, against the function (inclusive).
Inclusive counts take in the opcodes other threads ran meanwhile, so read them for functions
that do not wait (a lock, a socket, a pool's queue); self counts are exact. Opcodes are not
equal in cost (a call into C is one), so use it to find what runs most, and
``bench-worker-instructions`` to measure a change. About 30 times slower than the untraced path.

    python bench/worker_opcodes.py [--shares 200] [--group 50] [--top 30]

Printed: opcodes a share, then the functions with the most, self and inclusive (opcodes a
share, per cent of all, calls a share). The last line of standard output is one JSON object.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections import Counter
from types import FrameType
from typing import Any

import orjson

from bench.worker_cpu import publishing
from workers import execution
from workers.runtime import Runtime

Key = tuple[str, int, str]


class OpcodeCounter:
    """A tracer for every thread: opcodes by function, self and inclusive, and calls."""

    def __init__(self) -> None:
        self.own: Counter[Key] = Counter()
        self.inclusive: Counter[Key] = Counter()
        self.calls: Counter[Key] = Counter()
        self.total = 0
        self.base = 0
        self._stacks = threading.local()

    def trace(self, frame: FrameType, event: str, _: Any) -> Any:
        code = frame.f_code
        if event == "opcode":
            self.total += 1  # under the GIL: one thread at a time runs this
            self.own[(code.co_filename, code.co_firstlineno, code.co_qualname)] += 1
        elif event == "call":
            frame.f_trace_opcodes = True
            key = (code.co_filename, code.co_firstlineno, code.co_qualname)
            self.calls[key] += 1
            self._stack().append((key, self.total))
        elif event == "return" and (stack := self._stack()):
            key, started = stack.pop()
            if all(k != key for k, _ in stack):  # a recursive call is counted once, at the outermost
                self.inclusive[key] += self.total - started
        return self.trace

    def reset(self) -> None:
        """Count from here (a call running now keeps its start: only long-lived loops are)."""
        self.own.clear()
        self.inclusive.clear()
        self.calls.clear()
        self.base = self.total

    @property
    def counted(self) -> int:
        """Opcodes since the reset."""
        return self.total - self.base

    def _stack(self) -> list[tuple[Key, int]]:
        stack: list[tuple[Key, int]] | None = getattr(self._stacks, "stack", None)
        if stack is None:
            stack = self._stacks.stack = []
        return stack


def name(key: Key) -> str:
    path = key[0]
    for prefix in (f"{sys.prefix}/lib/python3.11/site-packages/", sys.base_prefix + "/lib/", os.getcwd() + "/"):
        path = path.removeprefix(prefix)
    return f"{path}:{key[1]} {key[2]}"


def table(title: str, counts: Counter[Key], counter: OpcodeCounter, shares: int, top: int) -> list[dict[str, Any]]:
    print(f"{title}: opcodes a share, per cent of all, calls a share")
    rows = []
    for key, count in counts.most_common(top):
        rows.append({"function": name(key), "opcodes": round(count / shares),
                     "calls": round(counter.calls[key] / shares, 1)})
        print(f"  {count / shares:8.0f} {100 * count / counter.counted:5.1f} % {counter.calls[key] / shares:6.1f}  "
              f"{name(key)}")
    return rows


def start_every_call_thread(rt: Runtime) -> None:
    """Every thread of the call pool started now (traced from here on), as in a worker that
    has run for a while: otherwise the measured groups start some, and ``Thread.start`` heads
    the inclusive table (863 opcodes a share, mostly its wait for the new thread) for what a
    running worker never does."""
    threads = getattr(rt.calls, "_max_workers", 0)  # the executor's size, as built at boot
    if rt.calls is None or not threads:
        return
    everyone = threading.Barrier(threads + 1)
    for _ in range(threads):
        rt.calls.submit(everyone.wait)  # each blocks its thread until all are started
    everyone.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shares", type=int, default=200, help="shares traced (after the warm-up group)")
    parser.add_argument("--group", type=int, default=50, help="shares a group (the dispatcher's message size)")
    parser.add_argument("--top", type=int, default=30, help="functions listed, self and inclusive")
    args = parser.parse_args()
    counter = OpcodeCounter()
    with publishing("bench-worker-opcodes") as bench:
        groups = bench.due_groups(args.shares, args.group)
        # Traced from the warm-up on: the call threads start during it, and a thread is traced
        # only when it starts after ``threading.settrace``. Counted from after it.
        threading.settrace(counter.trace)
        sys.settrace(counter.trace)
        try:
            start_every_call_thread(bench.rt)
            execution.execute_shares(bench.rt, groups[0])  # warm-up: connections, prepared statements
            counter.reset()
            outcomes = [o for g in groups[1:] for o in execution.execute_shares(bench.rt, g).values()]
        finally:
            sys.settrace(None)
            threading.settrace(None)
    if outcomes.count("share_sent") != args.shares:
        raise SystemExit(f"not every share was sent: {sorted(set(outcomes))}")
    print(f"{counter.counted / args.shares:.0f} Python opcodes a share ({args.shares} shares)")
    own = table("self", counter.own, counter, args.shares, args.top)
    # A count above every opcode counted is a loop that waited while the others ran (a pool's
    # worker, a lock): left out.
    running = Counter({k: v for k, v in counter.inclusive.items() if v <= counter.counted})
    inclusive = table("inclusive (without the loops that wait)", running, counter, args.shares, args.top)
    print(orjson.dumps({"shares": args.shares, "group": args.group,
                        "opcodes_per_share": round(counter.counted / args.shares),
                        "self": own[:10], "inclusive": inclusive[:10]}).decode())


if __name__ == "__main__":
    main()
