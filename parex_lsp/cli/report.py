"""`parex-lsp report [RUN] -o FILE`: a run as one self-contained HTML page (inline SVG and CSS, nothing fetched).

One lane per concurrency slot, each attempt a bar coloured by its outcome (a retried attempt amber, its backoff
and any lock wait in the `waiting` lanes below: those hold no slot), the critical path outlined, details on
hover (SVG `<title>`), and the totals: wall time, work time, speedup.
"""

from __future__ import annotations

import html
import sys
from pathlib import Path

from parex_lsp.cli.picking import pick
from parex_lsp.cli.timeline import Bar, Timeline, read_timeline
from parex_lsp.cli.workspace import Workspace

COLOURS = {"succeeded": "#2e9d57", "failed": "#d64545", "cancelled": "#8a8f98", "retried": "#e0a030",
           "ready": "#8b5cf6", "running": "#3b82f6", "lock-wait": "#c9d3e6", "backoff": "#f3d9a4"}
LABEL_W, PLOT_W, LANE_H, BAR_H, TOP = 90, 960, 30, 22, 30


def write_report(ws: Workspace, refs: list[str], output: str | None) -> int:
    picked = pick(ws, refs, task_wanted=False)
    tl = read_timeline(picked.journal, _depends_on(picked.run.plan))
    path = Path(output or f"{tl.run_id}.html")
    path.write_text(render(tl), encoding="utf-8")
    print(f"parex: wrote {path} (run {tl.run_id}, {len(tl.attempts)} attempt(s), speedup {tl.speedup:.2f}×)",
          file=sys.stderr)
    return 0


def _depends_on(plan_path: str | None) -> dict[str, list[str]]:
    """The plan's dependencies, when its file can still be read (for the critical path)."""
    if not plan_path or not Path(plan_path).is_file():
        return {}
    from parex_lsp.plan import resolve

    got = resolve(Path(plan_path), editor_root=Path(plan_path).parent)
    return {t.id: list(t.depends_on) for t in got.plan.tasks} if got.plan else {}


def render(tl: Timeline) -> str:
    slots = max([b.lane + 1 for b in tl.attempts] or [1])
    waits = max([b.lane + 1 for b in tl.waits] or [0])
    scale = PLOT_W / tl.wall if tl.wall > 0 else 0.0
    height = TOP + (slots + waits) * LANE_H + 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{LABEL_W + PLOT_W + 20}" height="{height}" '
             f'role="img" aria-label="timeline of run {_e(tl.run_id)}">']
    parts += _axis(tl.wall, scale, height)
    for lane in range(slots):
        parts.append(_lane_label(f"slot {lane + 1}", lane))
    for lane in range(waits):
        parts.append(_lane_label("waiting", slots + lane))
    for bar in tl.attempts:
        parts.append(_bar(bar, bar.lane, scale))
    for bar in tl.waits:
        parts.append(_bar(bar, slots + bar.lane, scale))
    parts.append("</svg>")
    return PAGE.format(run=_e(tl.run_id), plan=_e(tl.plan or "inline"), status=_e(tl.status),
                       wall=f"{tl.wall:.2f}", work=f"{tl.work:.2f}", speedup=f"{tl.speedup:.2f}",
                       slots=tl.slots, svg="\n".join(parts), legend=_legend(),
                       path=_e(" → ".join(tl.critical_path) or "—"), never=_never(tl))


def _axis(wall: float, scale: float, height: int) -> list[str]:
    step = _tick_step(wall)
    out, t = [], 0.0
    while t <= wall + 1e-9 and step > 0:
        x = LABEL_W + t * scale
        out.append(f'<line class="tick" x1="{x:.1f}" y1="{TOP - 6}" x2="{x:.1f}" y2="{height - 24}"/>'
                   f'<text class="tick-label" x="{x:.1f}" y="{TOP - 10}">{t:g}s</text>')
        t = round(t + step, 6)
    return out


def _tick_step(wall: float) -> float:
    for step in (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600):
        if wall / step <= 12:
            return step
    return wall / 10


def _lane_label(text: str, row: int) -> str:
    y = TOP + row * LANE_H + LANE_H / 2 + 4
    return f'<text class="lane-label" x="4" y="{y:.1f}">{_e(text)}</text>'


def _bar(bar: Bar, row: int, scale: float) -> str:
    x = LABEL_W + bar.start * scale
    w = max((bar.end - bar.start) * scale, 2.0)  # an instant still shows
    y = TOP + row * LANE_H + (LANE_H - BAR_H) / 2
    is_attempt = bar.kind == "attempt"
    fill = COLOURS[bar.outcome if is_attempt else bar.kind]
    classes = ("task" if is_attempt else f"wait {bar.kind}") + (" critical" if bar.critical else "")
    what = (f"{bar.task}, attempt {bar.attempt}: {bar.outcome}" if is_attempt else f"{bar.task}: {bar.note}")
    title = (f"{what}\n{bar.start:.2f}s → {bar.end:.2f}s ({bar.end - bar.start:.2f}s)"
             + (f"\n{bar.note}" if is_attempt and bar.note else "") + ("\non the critical path" if bar.critical else ""))
    label = f'<text class="bar-label" x="{x + 4:.1f}" y="{y + BAR_H / 2 + 4:.1f}">{_e(bar.task)}</text>' \
        if w > 8 * len(bar.task) + 8 else ""
    return (f'<g><rect class="{classes}" data-task="{_e(bar.task)}" data-outcome="{_e(bar.outcome)}" '
            f'x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{BAR_H}" rx="3" fill="{fill}">'
            f"<title>{_e(title)}</title></rect>{label}</g>")


def _legend() -> str:
    return " ".join(f'<span class="key"><span class="swatch" style="background:{c}"></span>{_e(name)}</span>'
                    for name, c in COLOURS.items())


def _never(tl: Timeline) -> str:
    if not tl.never_ran:
        return ""
    rows = "".join(f"<li><b>{_e(t)}</b> {_e(why)}</li>" for t, why in tl.never_ran.items())
    return f"<h2>Never started</h2><ul>{rows}</ul>"


def _e(text: str) -> str:
    return html.escape(text, quote=True)


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>parex run {run}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1d2330; }}
h1 {{ font-size: 1.3em; margin: 0 0 .3em; }}
.totals span {{ margin-right: 1.5em; }}
svg {{ display: block; margin: 1em 0; }}
.tick {{ stroke: #e3e6ec; }}
.tick-label, .lane-label {{ font-size: 11px; fill: #5b6475; }}
.bar-label {{ font-size: 11px; fill: #fff; pointer-events: none; }}
rect.critical {{ stroke: #111; stroke-width: 2.5; }}
rect.lock-wait {{ stroke: #5b6475; stroke-dasharray: 4 3; }}
.key {{ margin-right: 1em; white-space: nowrap; }}
.swatch {{ display: inline-block; width: .9em; height: .9em; margin-right: .3em; vertical-align: -.1em; }}
</style></head>
<body>
<h1>Run {run} — {status}</h1>
<div>plan {plan}</div>
<div class="totals"><span>wall <b id="wall">{wall}s</b></span><span>work <b id="work">{work}s</b></span>
<span>speedup <b id="speedup">{speedup}×</b></span><span>max concurrency {slots}</span></div>
{svg}
<div class="legend">{legend} <span class="key"><span class="swatch" style="border:2px solid #111"></span>critical path</span></div>
<p>Critical path: <span id="critical-path">{path}</span></p>
{never}
</body></html>
"""
