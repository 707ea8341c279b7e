"""What a run will do (--dry-run) and what it did for a CI server (--junit, validated against the JUnit schema)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import xmlschema

from tests.cli.cli_helpers import parex, write_plan

JUNIT_XSD = xmlschema.XMLSchema(str(Path(__file__).with_name("data") / "junit-10.xsd"))

DIAMOND = """
    [run]
    max_concurrency = 3
    [[task]]
    id = "gen"
    prompt = "sleep 0.6; echo gen >> ran"
    [[task]]
    id = "api"
    prompt = "sleep 0.3; echo api >> ran"
    files = ["src/**"]
    depends_on = ["gen"]
    [[task]]
    id = "cli"
    prompt = "sleep 0.3; echo cli >> ran"
    files = ["src/cli.py"]
    depends_on = ["gen"]
    [[task]]
    id = "docs"
    prompt = "echo docs >> ran"
    [[task]]
    id = "test"
    prompt = "sleep 0.2; echo test >> ran"
    depends_on = ["api", "cli"]
"""


def test_dry_run_forecasts_without_running_anything(workspace: Path):
    write_plan(workspace, DIAMOND)
    before = parex("run", "parex.toml", "--dry-run", "--json", cwd=workspace)
    assert before.returncode == 0, before.stderr
    assert not (workspace / "ran").exists() and not (workspace / ".parex" / "runs").exists()
    f = json.loads(before.stdout)
    assert f["waves"] == [["gen", "docs"], ["api", "cli"], ["test"]]
    assert f["lockConflicts"] == [{"tasks": ["api", "cli"], "file": "src/**"}]
    assert sorted(f["unknownDurations"]) == ["api", "cli", "docs", "gen", "test"]
    # in worktrees (as on Ray, whose attempts always get one) overlapping files serialize nothing
    for flag in (["--isolation", "worktree"], ["--executor", "ray"]):
        assert json.loads(parex("run", "parex.toml", "-n", "--json", *flag, cwd=workspace).stdout)["lockConflicts"] == []

    assert parex("run", "parex.toml", cwd=workspace).returncode == 0
    (workspace / "ran").unlink()
    after = parex("run", "parex.toml", "-n", "--json", cwd=workspace)
    f = json.loads(after.stdout)
    assert f["unknownDurations"] == [] and f["criticalPath"][0] == "gen" and f["criticalPath"][-1] == "test"
    # gen, then api and cli one after the other (their files overlap), then test: about 0.6+0.3+0.3+0.2
    assert 1.3 <= f["expectedSeconds"] <= 2.5, f
    assert not (workspace / "ran").exists()
    text = parex("run", "parex.toml", "--dry-run", cwd=workspace).stdout
    assert "critical path: gen → " in text and "lock conflict: api and cli may both write src/**" in text
    assert "expected duration: about" in text and "nothing is run" in text
    only = json.loads(parex("run", "--only", "test", "parex.toml", "-n", "--json", cwd=workspace).stdout)
    assert only["waves"] == [["test"]]  # its dependencies succeeded before


def test_junit_has_one_valid_testcase_per_task(workspace: Path):
    write_plan(workspace, """
        [[task]]
        id = "ok"
        prompt = "echo fine"
        [[task]]
        id = "bad"
        prompt = '''printf 'colour \\033[31mred\\033[0m & <tag>\\n'; echo 'last words'; exit 3'''
        [[task]]
        id = "after"
        prompt = "true"
        depends_on = ["bad"]
    """)
    out = workspace / "reports" / "parex.xml"
    out.parent.mkdir()
    p = parex("run", "parex.toml", "--junit", str(out), cwd=workspace)
    assert p.returncode == 1, p.stdout + p.stderr
    JUNIT_XSD.validate(str(out))
    suite = ET.parse(out).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "1")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert set(cases) == {"ok", "bad", "after"}
    failure = cases["bad"].find("failure")
    assert failure is not None and failure.get("type") == "exit-code"
    assert failure.get("message") == "exited with code 3"
    assert "last words" in (failure.text or "") and "& <tag>" in (failure.text or "")
    skipped = cases["after"].find("skipped")
    assert skipped is not None and "bad" in (skipped.get("message") or "")
    assert cases["ok"].find("failure") is None and cases["ok"].find("skipped") is None


def test_junit_into_a_missing_folder_is_refused_before_running(workspace: Path):
    write_plan(workspace, '[[task]]\nid = "a"\nprompt = "echo ran > ran"\n')
    p = parex("run", "parex.toml", "--junit", "nowhere/out.xml", cwd=workspace)
    assert p.returncode == 2 and "nowhere" in p.stderr
    assert not (workspace / "ran").exists()
