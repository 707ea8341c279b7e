// "Show Run Timeline": which runs there are (`parex-lsp status --json`), and the page of
// `parex-lsp report` made fit for a webview. Pure, no `vscode`.

export interface RunListing {
  /** The workspace whose runs these are, as the server found it from the folder it ran in. */
  workspace: string;
  /** Newest first. */
  runs: RunInfo[];
}

export interface RunInfo {
  runId: string;
  plan: string | null;
  status: string;
  /** Seconds since the epoch, when known. */
  startedAt: number | null;
  /** Task id → status. */
  tasks: Record<string, string>;
}

/** `status --json` without a run: `{workspace, runs: [...], locks}`; throws with what is wrong. */
export function parseRunList(stdout: string): RunListing {
  let raw: unknown;
  try {
    raw = JSON.parse(stdout);
  } catch {
    throw new Error(`parex-lsp status --json printed no JSON: ${JSON.stringify(stdout.slice(0, 200))}`);
  }
  const obj = raw as { workspace?: unknown; runs?: unknown };
  if (typeof raw !== 'object' || raw === null || typeof obj.workspace !== 'string' || !Array.isArray(obj.runs)) {
    throw new Error(`parex-lsp status --json: expected {workspace, runs}, got ${JSON.stringify(raw).slice(0, 200)}`);
  }
  const runs: RunInfo[] = [];
  for (const r of obj.runs as unknown[]) {
    const run = r as Record<string, unknown>;
    if (typeof run !== 'object' || run === null || typeof run.runId !== 'string') continue;
    const tasks: Record<string, string> = {};
    if (typeof run.tasks === 'object' && run.tasks !== null) {
      for (const [id, status] of Object.entries(run.tasks as Record<string, unknown>)) tasks[id] = String(status);
    }
    runs.push({
      runId: run.runId,
      plan: typeof run.plan === 'string' ? run.plan : null,
      status: typeof run.status === 'string' ? run.status : 'unknown',
      startedAt: typeof run.startedAt === 'number' ? run.startedAt : null,
      tasks,
    });
  }
  // Newest first; a run that never said when it started goes last, in the server's order.
  const order = new Map(runs.map((r, i) => [r, i]));
  runs.sort((a, b) => (b.startedAt ?? -Infinity) - (a.startedAt ?? -Infinity) || (order.get(a) ?? 0) - (order.get(b) ?? 0));
  return { workspace: obj.workspace, runs };
}

/** `2 succeeded, 1 failed`: a run's tasks counted by status, in the order they first appear. */
export function taskCounts(tasks: Record<string, string>): string {
  const counts = new Map<string, number>();
  for (const status of Object.values(tasks)) counts.set(status, (counts.get(status) ?? 0) + 1);
  return [...counts].map(([status, n]) => `${n} ${status}`).join(', ') || 'no tasks';
}

/** One quick pick entry per run: the id, then what it ran and how it ended, then when. */
export function runPickItems(
  runs: readonly RunInfo[],
  when: (startedAt: number) => string = (s) => new Date(s * 1000).toLocaleString(),
): { label: string; description: string; detail: string; runId: string }[] {
  return runs.map((r) => ({
    label: r.runId,
    description: `${r.status} · ${r.plan ? baseName(r.plan) : 'inline tasks'}`,
    detail: `${r.startedAt !== null ? `started ${when(r.startedAt)} · ` : ''}${taskCounts(r.tasks)}`,
    runId: r.runId,
  }));
}

function baseName(p: string): string {
  return p.split(/[\\/]/).pop() ?? p;
}

/**
 * The Content-Security-Policy of the timeline's webview: nothing from the network or from files,
 * only the page's own inline styles (the report's `<style>` and `style=` attributes, which a
 * nonce cannot cover) and, when it has inline scripts, those scripts by nonce.
 */
export function timelineCsp(scriptNonce?: string): string {
  const script = scriptNonce ? `'nonce-${scriptNonce}'` : "'none'";
  return `default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src 'none'; script-src ${script}; connect-src 'none'; form-action 'none'; frame-src 'none'; base-uri 'none'`;
}

/** Whether the page has a `<script>` element (the report today has none: its hover details are SVG `<title>`s). */
export function hasScript(html: string): boolean {
  return /<script\b/i.test(html);
}

/**
 * The report's page for a webview: the CSP as the first element of `<head>`, every `<script>`
 * given the nonce, and a light background under the report's dark-on-white colours whatever the
 * editor's theme. `nonce` is only used when the page has scripts.
 */
export function timelineWebviewHtml(report: string, nonce: string): string {
  const scripts = hasScript(report);
  let html = scripts ? report.replace(/<script\b/gi, `<script nonce="${nonce}"`) : report;
  const head =
    `<meta http-equiv="Content-Security-Policy" content="${timelineCsp(scripts ? nonce : undefined)}">` +
    '<style>html, body { background: #fff; }</style>';
  const at = /<head\b[^>]*>/i.exec(html);
  if (at) return html.slice(0, at.index + at[0].length) + head + html.slice(at.index + at[0].length);
  const htmlTag = /<html\b[^>]*>/i.exec(html);
  if (htmlTag) {
    const end = htmlTag.index + htmlTag[0].length;
    return `${html.slice(0, end)}<head>${head}</head>${html.slice(end)}`;
  }
  return `<!doctype html><html><head>${head}</head><body>${html}</body></html>`;
}

/** The webview's title: the run it shows. */
export function timelineTitle(runId: string): string {
  return `Run Timeline — ${runId}`;
}
