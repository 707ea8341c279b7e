import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hasScript, parseRunList, runPickItems, taskCounts, timelineCsp, timelineTitle, timelineWebviewHtml } from '../src/timeline';

// The shape of `parex-lsp report`'s page (parex_lsp/cli/report.py): inline <style>, style= attributes, inline SVG whose <title>s are the hover details.
const REPORT = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>parex run r2</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; }
</style></head>
<body>
<h1>Run r2 — failed</h1>
<svg xmlns="http://www.w3.org/2000/svg" width="1070" height="120"><text class="lane-label" x="4" y="49.0">slot 1</text>
<g><rect class="task" data-task="hello" data-outcome="succeeded" x="90.0" y="34.0" width="400.0" height="22" rx="3" fill="#2e9d57"><title>hello, attempt 1: succeeded</title></rect></g></svg>
<div class="legend"><span class="key"><span class="swatch" style="background:#2e9d57"></span>succeeded</span></div>
</body></html>
`;

describe('parseRunList', () => {
  it('reads status --json, newest run first', () => {
    const listing = parseRunList(
      JSON.stringify({
        workspace: '/w',
        runs: [
          { runId: 'r1', plan: '/w/parex.toml', status: 'succeeded', startedAt: 100, pid: 1, tasks: { a: 'succeeded' } },
          { runId: 'r3', plan: null, status: 'running', startedAt: null, pid: 3, tasks: {} },
          { runId: 'r2', plan: '/w/parex.toml', status: 'failed', startedAt: 200, pid: 2, tasks: { a: 'succeeded', b: 'failed', c: 'failed' } },
          { plan: 'no id: not a run' },
        ],
        locks: {},
      }),
    );
    assert.equal(listing.workspace, '/w');
    assert.deepEqual(listing.runs.map((r) => r.runId), ['r2', 'r1', 'r3']);
    assert.equal(taskCounts(listing.runs[0].tasks), '1 succeeded, 2 failed');
    assert.deepEqual(runPickItems(listing.runs, (s) => `t${s}`), [
      { label: 'r2', description: 'failed · parex.toml', detail: 'started t200 · 1 succeeded, 2 failed', runId: 'r2' },
      { label: 'r1', description: 'succeeded · parex.toml', detail: 'started t100 · 1 succeeded', runId: 'r1' },
      { label: 'r3', description: 'running · inline tasks', detail: 'no tasks', runId: 'r3' },
    ]);
  });

  it('names what is wrong with an answer it cannot read', () => {
    assert.throws(() => parseRunList('Traceback (most recent call last)'), /printed no JSON: "Traceback/);
    assert.throws(() => parseRunList('{"runId": "r1", "tasks": []}'), /expected \{workspace, runs\}/);
  });
});

describe('timelineWebviewHtml', () => {
  it('puts the CSP first in <head>: inline styles only, no script, nothing from the network', () => {
    const html = timelineWebviewHtml(REPORT, 'N0NCE');
    const csp = /<meta http-equiv="Content-Security-Policy" content="([^"]+)">/.exec(html);
    assert.ok(csp, 'a CSP meta element');
    assert.ok(html.indexOf(csp[0]) < html.indexOf('<meta charset') + 100 && html.indexOf(csp[0]) < html.indexOf('<style>\nbody'));
    assert.equal(csp[1], timelineCsp());
    assert.match(csp[1], /default-src 'none'/);
    assert.match(csp[1], /style-src 'unsafe-inline'/);
    assert.match(csp[1], /script-src 'none'/);
    assert.doesNotMatch(csp[1], /http|https|\*/);
    // The report itself is untouched: its SVG with the hover titles, its style attributes.
    assert.ok(html.includes('<title>hello, attempt 1: succeeded</title>'));
    assert.ok(html.includes('style="background:#2e9d57"'));
    assert.ok(!hasScript(REPORT));
  });

  it('allows an inline script only by its nonce', () => {
    const withScript = REPORT.replace('</body>', '<script>document.title = "x";</script></body>');
    const html = timelineWebviewHtml(withScript, 'abc123');
    assert.ok(hasScript(withScript));
    assert.match(html, /script-src 'nonce-abc123'/);
    assert.ok(html.includes('<script nonce="abc123">document.title'));
  });

  it('copes with a page without <head>', () => {
    assert.match(timelineWebviewHtml('<html><body>x</body></html>', 'n'), /^<html><head><meta http-equiv="Content-Security-Policy"/);
    assert.match(timelineWebviewHtml('<p>x</p>', 'n'), /^<!doctype html><html><head><meta http-equiv="Content-Security-Policy"[^]*<body><p>x<\/p><\/body>/);
  });

  it('titles the panel with the run', () => {
    assert.equal(timelineTitle('20261128-120000-ab12'), 'Run Timeline — 20261128-120000-ab12');
  });
});
