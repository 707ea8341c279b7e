"""`parex-lsp report`: the HTML timeline of a real run, loaded in headless Chromium to see what it draws."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from tests.cli.cli_helpers import parex, write_plan

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Added to a copy of the page: what the browser laid out and painted, written into the DOM it dumps.
PROBE = """<script>
const rects = [...document.querySelectorAll("svg rect")].map(r => {
  const box = r.getBoundingClientRect();
  return {cls: r.getAttribute("class"), task: r.dataset.task, outcome: r.dataset.outcome,
          fill: getComputedStyle(r).fill, stroke: getComputedStyle(r).stroke, width: box.width, height: box.height,
          title: r.querySelector("title") ? r.querySelector("title").textContent : null};
});
const probe = document.createElement("pre");
probe.id = "probe";
probe.textContent = JSON.stringify({rects, speedup: document.getElementById("speedup").textContent,
                                    path: document.getElementById("critical-path").textContent,
                                    external: [...document.querySelectorAll("[src],[href]")].length});
document.body.appendChild(probe);
</script></body>"""

PLAN = """
[run]
max_concurrency = 2
retry_backoff = "0.2s"
[agents.shell]
retry_on = ["try again"]
[[task]]
id = "a"
prompt = "sleep 1"
files = ["x"]
[[task]]
id = "b"
prompt = "sleep 0.6"
files = ["x"]
[[task]]
id = "flaky"
prompt = "if [ -e tried ]; then echo ok; else touch tried; echo 'try again'; exit 1; fi"
retries = 1
[[task]]
id = "bad"
prompt = "exit 3"
depends_on = ["a"]
[[task]]
id = "after"
prompt = "echo never"
depends_on = ["bad"]
"""


def _drawn(page: Path, tmp: Path) -> dict:
    probed = tmp / "probed.html"
    probed.write_text(page.read_text().replace("</body>", PROBE))
    dom = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                          probed.as_uri()], capture_output=True, text=True, timeout=120).stdout
    m = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert m, dom[-2000:]
    return json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<")
                      .replace("&gt;", ">"))


def test_the_report_draws_each_attempt_by_outcome_with_waits_and_the_critical_path(workspace: Path, tmp_path: Path):
    write_plan(workspace, PLAN)
    run = parex("run", "--json", cwd=workspace)
    assert run.returncode == 1, run.stderr
    result = json.loads(run.stdout.splitlines()[-1])
    p = parex("report", "-o", "run.html", cwd=workspace)
    assert p.returncode == 0 and "wrote run.html" in p.stderr, p.stderr
    drawn = _drawn(workspace / "run.html", tmp_path)
    assert drawn["external"] == 0  # nothing fetched: one self-contained file
    tasks = [r for r in drawn["rects"] if r["cls"].startswith("task")]
    assert all(r["width"] >= 2 and r["height"] > 10 for r in drawn["rects"])  # laid out, visible
    assert sorted((r["task"], r["outcome"], r["fill"]) for r in tasks) == [
        ("a", "succeeded", "rgb(46, 157, 87)"), ("b", "succeeded", "rgb(46, 157, 87)"),
        ("bad", "failed", "rgb(214, 69, 69)"),
        ("flaky", "retried", "rgb(224, 160, 48)"), ("flaky", "succeeded", "rgb(46, 157, 87)")]
    waits = sorted((r["task"], r["cls"]) for r in drawn["rects"] if r["cls"].startswith("wait"))
    assert waits == [("b", "wait lock-wait"), ("flaky", "wait backoff")]
    # b waited for a's lock, then ran last (flaky's two attempts end well before: a sleeps 1 s): a → b set the wall time, drawn outlined
    assert drawn["path"] == "a → b"
    assert {r["task"] for r in tasks if "critical" in r["cls"]} == {"a", "b"}
    assert all(r["stroke"] == "rgb(17, 17, 17)" for r in tasks if "critical" in r["cls"])
    [bad] = [r for r in tasks if r["task"] == "bad"]
    assert "bad, attempt 1: failed" in bad["title"] and "exited with code 3" in bad["title"]
    assert drawn["speedup"] == f"{result['speedup']:.2f}×"
    html = (workspace / "run.html").read_text()
    assert "Never started" in html and "after" in html and "dependency bad failed" in html


def test_report_of_an_unknown_run_is_refused(workspace: Path):
    write_plan(workspace, '[[task]]\nid = "a"\nprompt = "true"\n')
    assert parex("run", cwd=workspace).returncode == 0
    p = parex("report", "nope", cwd=workspace)
    assert p.returncode == 2 and "nope" in p.stderr, p.stderr
