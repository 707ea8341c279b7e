"""Properties of lock keys and the lock table: `keys_conflict` never misses an overlap, the in-process table
grants whole sets or nothing, and processes sharing the registry never hold overlapping keys at once."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections import Counter
from fnmatch import fnmatchcase
from functools import cache
from pathlib import Path

import hypothesis.strategies as st
from hypothesis import HealthCheck, assume, given, settings
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, precondition, rule

from parex_lsp.isolation.keys import keys_conflict
from parex_lsp.isolation.table import WorkspaceLocks
from parex_lsp.state import locks_dir

ROOT = Path(__file__).resolve().parents[2]

# ---------------------------------------------------------------------------------------------------------
# keys_conflict against a reference matcher
#
# Reference semantics, written independently of keys.py: a key names workspace-relative posix paths; each
# segment is matched with fnmatch (so `*`, `?`, `[...]` stay inside one segment); `**` is any number of whole
# segments, zero included, except at the end, where it is everything below its folder (one or more).

NAMES = ["a", "b", "ab", "ba", "x.py", "y.md", "^", "!", "-", "]", "[", "a-b", ".hidden"]
SET_CHARS = "ab!^-]z.["


@cache
def _matches(segments: tuple[str, ...], parts: tuple[str, ...]) -> bool:
    if not segments:
        return not parts
    head, rest = segments[0], segments[1:]
    if head == "**":
        if not rest:
            return len(parts) >= 1
        return any(_matches(rest, parts[i:]) for i in range(len(parts) + 1))
    return bool(parts) and fnmatchcase(parts[0], head) and _matches(rest, parts[1:])


def matches(key: str, path: str) -> bool:
    return _matches(tuple(key.split("/")), tuple(path.split("/")))


bracket = st.text(SET_CHARS, min_size=0, max_size=4).map(lambda s: f"[{s}]")
glob_segment = st.one_of(
    st.sampled_from(["*", "?", "**", "*.py", "a*", "*b", "?b", "a?", "[ab]", "[!a]", "[^a]", "[a-b]", "[b-a]",
                     "[]a]", "[!]", "[!]]", "[a-", "x[", "*[ab]*"]),
    bracket,
    st.tuples(st.sampled_from(["", "a", "*"]), bracket, st.sampled_from(["", "b", "*", "?"])).map("".join),
)
segment = st.one_of(st.sampled_from(NAMES), glob_segment)
key = st.lists(segment, min_size=1, max_size=4).map("/".join)
path = st.lists(st.sampled_from(NAMES), min_size=1, max_size=4).map("/".join)
key_set = st.frozensets(key, max_size=3)


def _generalize(part: str) -> st.SearchStrategy[str]:
    """Segments that match `part` (by construction, and checked with fnmatch)."""
    options = ["*", "?" * len(part), part[:1] + "*", "*" + part[-1:], f"[{part[:1]}z]" + "*",
               "*" + f"[!{'q' if part[-1:] != 'q' else 'r'}]"]
    escaped = "".join(f"[{c}]" if c in "*?[]" else c for c in part)
    return st.sampled_from([o for o in options + [escaped] if fnmatchcase(part, o)])


@st.composite
def key_naming(draw: st.DrawFn, path_text: str) -> str:
    """A key that names `path_text`: some segments generalized, some runs of segments folded into `**`."""
    parts = path_text.split("/")
    out: list[str] = []
    i = 0
    while i < len(parts):
        choice = draw(st.integers(0, 3))
        if choice == 0:  # `**` over the next n segments (zero only when more follow)
            n = draw(st.integers(0, len(parts) - i))
            if i + n == len(parts) or (out and out[-1] == "**"):
                n = max(n, 1)  # a trailing `**` names one segment at least
            out.append("**")
            i += n
            continue
        out.append(parts[i] if choice == 1 else draw(_generalize(parts[i])))
        i += 1
    return "/".join(out)


@settings(max_examples=200, deadline=None)
@given(key_set, key_set)
def test_keys_conflict_is_symmetric_and_never_raises(a: frozenset[str], b: frozenset[str]):
    assert keys_conflict(a, b) == keys_conflict(b, a)


@settings(max_examples=200, deadline=None)
@given(st.data(), path, key_set, key_set)
def test_keys_that_both_name_a_path_conflict(data: st.DataObject, p: str, extra_a: frozenset[str],
                                            extra_b: frozenset[str]):
    ka, kb = data.draw(key_naming(p)), data.draw(key_naming(p))
    assume(matches(ka, p) and matches(kb, p))  # the construction is checked by the reference itself
    assert keys_conflict(extra_a | {ka}, extra_b | {kb}), (ka, kb, p)
    assert keys_conflict([ka], [p]) and keys_conflict([p], [kb])


@settings(max_examples=300, deadline=None)
@given(key, key, st.lists(path, min_size=1, max_size=12))
def test_any_path_named_by_two_keys_makes_them_conflict(a: str, b: str, paths: list[str]):
    for p in paths:
        if matches(a, p) and matches(b, p):
            assert keys_conflict([a], [b]), (a, b, p)


@settings(max_examples=300, deadline=None)
@given(key, path)
def test_a_literal_path_conflicts_with_a_key_exactly_when_the_key_names_it(k: str, p: str):
    """Against a literal path the answer is exact, not merely conservative."""
    assume(not any(c in p for c in "*?["))
    assert keys_conflict([k], [p]) == matches(k, p), (k, p)


# ---------------------------------------------------------------------------------------------------------
# the in-process table (and its owner files) under random acquire / release sequences

TABLE_KEYS = ["a.py", "b.py", "src/x.py", "src/*.py", "src/**", "docs/**/*.md", "docs/a.md", "**/*.md"]
HOLDERS = [("r1", "t1"), ("r1", "t2"), ("r1", "t3"), ("r2", "t1")]


class TableMachine(RuleBasedStateMachine):
    """The model: holder -> Counter of keys. A set is granted iff no other holder's keys conflict with it."""

    cross_process = False

    def __init__(self) -> None:
        super().__init__()
        import tempfile

        self._dir = tempfile.TemporaryDirectory()
        self.workspace = Path(self._dir.name)
        self.locks = WorkspaceLocks(self.workspace, cross_process=self.cross_process)
        self.model: dict[tuple[str, str], Counter[str]] = {}

    grants = Bundle("grants")

    def _others_conflict(self, holder: tuple[str, str], keys: frozenset[str]) -> bool:
        return any(keys_conflict(keys, held) for h, held in self.model.items() if h != holder)

    @rule(target=grants, holder=st.sampled_from(HOLDERS), keys=st.frozensets(st.sampled_from(TABLE_KEYS), min_size=1,
                                                                             max_size=3))
    def try_acquire(self, holder: tuple[str, str], keys: frozenset[str]):
        before = {h: self.locks.held_by(*h) for h in HOLDERS}
        blocked = self.locks.try_acquire(*holder, keys)
        if self._others_conflict(holder, keys):
            assert blocked is not None, (holder, keys, self.model)
            key, owner = blocked
            assert key in keys
            blocker = (owner.run_id, owner.task_id)
            assert blocker != holder and keys_conflict([key], self.model[blocker])
            assert {h: self.locks.held_by(*h) for h in HOLDERS} == before  # nothing of the set was taken
            return None
        assert blocked is None, (holder, keys, blocked, self.model)
        self.model.setdefault(holder, Counter()).update(keys)
        return (holder, keys)

    @rule(grant=grants)
    def release_one_grant(self, grant):
        """Undo one grant (what `hold` does when its block ends): keys granted more often stay held."""
        if grant is None:
            return
        holder, keys = grant
        counts = self.model.get(holder)
        if counts is None or any(counts[k] < 1 for k in keys):
            return  # released already as a whole
        self.locks._release_some(holder, keys)
        counts.subtract(keys)
        for k in [k for k, n in counts.items() if n <= 0]:
            del counts[k]
        if not counts:
            del self.model[holder]

    @rule(holder=st.sampled_from(HOLDERS))
    def release(self, holder: tuple[str, str]):
        self.locks.release(*holder)
        self.model.pop(holder, None)

    @invariant()
    def held_sets_match_the_model(self):
        for h in HOLDERS:
            assert self.locks.held_by(*h) == frozenset(self.model.get(h, ())), h

    @invariant()
    def no_two_holders_overlap(self):
        held = [(h, self.locks.held_by(*h)) for h in HOLDERS]
        for i, (h, a) in enumerate(held):
            for g, b in held[i + 1:]:
                assert not keys_conflict(a, b), (h, a, g, b)

    @invariant()
    def holders_name_every_held_key(self):
        expected = {k: h for h, c in self.model.items() for k in c}
        assert {k: (o.run_id, o.task_id) for k, o in self.locks.holders().items()} == expected

    @precondition(lambda self: self.cross_process)
    @invariant()
    def owner_files_publish_exactly_what_is_held(self):
        on_disk = {}
        for f in locks_dir(self.workspace).glob("*.json"):
            d = json.loads(f.read_text())
            key = (d["runId"], d["taskId"])
            assert key not in on_disk, f"two owner files for {key}"
            on_disk[key] = frozenset(d["keys"])
        assert on_disk == {h: frozenset(c) for h, c in self.model.items()}

    def teardown(self):
        try:
            self.locks.close()
            assert self.locks.holders() == {}
            if self.cross_process:
                assert [p.name for p in locks_dir(self.workspace).iterdir() if p.name != "registry.lock"] == []
        finally:
            self._dir.cleanup()


class CrossProcessTableMachine(TableMachine):
    cross_process = True


TestInProcessTable = TableMachine.TestCase
TestInProcessTable.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)
TestTableWithOwnerFiles = CrossProcessTableMachine.TestCase
TestTableWithOwnerFiles.settings = settings(max_examples=30, stateful_step_count=25, deadline=None)


# ---------------------------------------------------------------------------------------------------------
# several processes on one registry

HAMMER = textwrap.dedent("""
    import json, os, sys, time, anyio
    from pathlib import Path
    from parex_lsp.isolation.table import WorkspaceLocks
    ws, name, plan = Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
    locks = WorkspaceLocks(ws)
    spans = []
    async def main():
        for i, (keys, hold_ms) in enumerate(plan):
            task = f"{name}-{i % 2}"
            await locks.acquire("run-" + name, task, frozenset(keys), timeout=60, poll=0.002)
            start = time.monotonic_ns()  # after the grant ...
            markers = []
            for k in sorted(keys):  # O_EXCL: fails if a process holding the same key is inside
                m = ws / "inside" / k.replace("/", "%")
                os.close(os.open(m, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                markers.append(m)
            time.sleep(hold_ms / 1000)
            for m in markers:
                os.unlink(m)
            spans.append((keys, start, time.monotonic_ns()))  # ... and before the release
            locks.release("run-" + name, task)
    anyio.run(main)
    locks.close()
    print(json.dumps(spans))
""")

PROCESS_KEYS = ["a.py", "b.py", "src/x.py", "src/*.py", "src/**", "docs/a.md", "**/*.md", "docs/**"]


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(st.tuples(st.frozensets(st.sampled_from(PROCESS_KEYS), min_size=1, max_size=3),
                                   st.integers(0, 3)), min_size=8, max_size=20),
                min_size=2, max_size=3))
def test_processes_never_hold_overlapping_keys_at_once(tmp_path_factory, plans):
    ws = tmp_path_factory.mktemp("ws")
    (ws / "inside").mkdir()
    script = ws.parent / "hammer.py"
    script.write_text(HAMMER)
    procs = [subprocess.Popen([sys.executable, str(script), str(ws), f"p{n}",
                               json.dumps([(sorted(k), ms) for k, ms in plan])],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
             for n, plan in enumerate(plans)]
    spans = []
    for n, p in enumerate(procs):
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err  # FileExistsError: two processes inside for one key
        spans += [(n, frozenset(keys), start, end) for keys, start, end in json.loads(out)]
    assert len(spans) == sum(len(plan) for plan in plans)
    for i, (p, keys, s, e) in enumerate(spans):
        for q, other, s2, e2 in spans[i + 1:]:
            if p != q and keys_conflict(keys, other):
                assert e <= s2 or e2 <= s, f"p{p} held {sorted(keys)} and p{q} {sorted(other)} at once"
    assert [f.name for f in locks_dir(ws).iterdir() if f.name != "registry.lock"] == []
