// Drives code-server in Chromium as a user would; run by e2e.sh. Exit code = verdict.
// Env: E2E_URL, E2E_WORKSPACE, E2E_SCREENSHOT, E2E_ARTIFACTS, E2E_MODEL_URL (an OpenAI-compatible
// server that answers the callN: prompts of answers.md: e2e/fake_model.py), E2E_USER_DATA (the
// profile, whose logs hold the language client's trace).
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const url = process.env.E2E_URL;
const workspace = process.env.E2E_WORKSPACE;
const screenshot = process.env.E2E_SCREENSHOT;
const artifacts = process.env.E2E_ARTIFACTS ?? '.';
const modelUrl = process.env.E2E_MODEL_URL;
const userData = process.env.E2E_USER_DATA;
// The review workspace (a git repository, worktree isolation, merge = "review") and its screenshot.
const reviewUrl = process.env.E2E_REVIEW_URL;
const reviewWorkspace = process.env.E2E_REVIEW_WORKSPACE;
const reviewScreenshot = process.env.E2E_REVIEW_SCREENSHOT ?? path.join(artifacts, 'review.png');
if (!url || !workspace || !screenshot) {
  console.error('driver: E2E_URL, E2E_WORKSPACE and E2E_SCREENSHOT are required');
  process.exit(2);
}

const started = Date.now();
const log = (msg) => console.log(`driver [${((Date.now() - started) / 1000).toFixed(1)}s] ${msg}`);
const checks = [];
const check = (ok, what) => {
  checks.push({ ok, what });
  log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
};

/** The visible text of the first element matching `selector`, with non-breaking spaces made plain. */
async function textOf(page, selector) {
  const texts = await page.locator(selector).allInnerTexts();
  return texts.join('\n').replace(/\u00a0/g, ' ');
}

/** Waits until `predicate(text of selector)` holds; returns that text, or undefined on timeout. */
async function waitForText(page, selector, predicate, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let text = '';
  while (Date.now() < deadline) {
    text = await textOf(page, selector).catch(() => '');
    if (predicate(text)) return text;
    await page.waitForTimeout(200);
  }
  return undefined;
}

/**
 * F1 and type `text` into the quick input. Retried: the palette closes when something takes the
 * focus right after it opened (an editor that is still opening, a view that reveals itself).
 */
async function quickInput(page, text) {
  const input = page.locator('.quick-input-widget input.input');
  for (let attempt = 1; ; attempt++) {
    await page.keyboard.press('F1');
    try {
      await input.waitFor({ state: 'visible', timeout: 10000 });
      await input.fill(text, { timeout: 5000 });
      return input;
    } catch (err) {
      if (attempt >= 3) throw err;
      log(`the quick input closed before "${text}" was typed; again`);
      await page.keyboard.press('Escape');
      await page.waitForTimeout(500);
    }
  }
}

/** F1, type, and run the entry whose label contains `label`. */
async function runCommand(page, text, label = text) {
  const input = await quickInput(page, `>${text}`);
  const row = page.locator('.quick-input-widget .monaco-list-row', { hasText: label }).first();
  await row.waitFor({ state: 'visible', timeout: 15000 });
  await page.waitForTimeout(150);
  await input.press('Enter');
}

/** Quick Open (F1 without the `>`): opens a file of the workspace by name. */
async function openFile(page, name) {
  const input = await quickInput(page, name);
  const row = page.locator('.quick-input-widget .monaco-list-row', { hasText: name }).first();
  await row.waitFor({ state: 'visible', timeout: 15000 });
  await page.waitForTimeout(150);
  await input.press('Enter');
  await page.locator(`.tabs-container .tab.active[aria-label*="${name}"]`).waitFor({ timeout: 15000 });
}

/** The tasks the server announced in a run's `runStarted` event, from the run's journal (undefined when not found). */
function announcedTasks(runId) {
  const journal = path.join(workspace, '.parex', 'runs', runId ?? '', 'journal.jsonl');
  if (!runId || !existsSync(journal)) return undefined;
  for (const line of readFileSync(journal, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const event = JSON.parse(line);
    if (event.kind === 'runStarted') return Array.isArray(event.data?.tasks) ? event.data.tasks : undefined;
  }
  return undefined;
}

/** The language client's trace (the "parex Language Server" output channel as code-server logs it). */
function serverTrace() {
  const found = [];
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.includes('parex Language Server')) found.push(full);
    }
  };
  if (userData && existsSync(path.join(userData, 'logs'))) walk(path.join(userData, 'logs'));
  return found.map((f) => readFileSync(f, 'utf8')).join('\n');
}

/** Quick Open's `:N`: puts the cursor at the start of line N (1-based) of the active editor. */
async function goToLine(page, line) {
  const input = await quickInput(page, `:${line}`);
  await page.waitForTimeout(150);
  await input.press('Enter');
  await page.locator('.quick-input-widget').waitFor({ state: 'hidden', timeout: 15000 });
  await page.waitForTimeout(200);
}


/**
 * What the timeline webview shows: the first frame (webviews are nested iframes) holding a report
 * page whose title names `runId`, read from its DOM: the CSP it was given, the run's heading, the
 * task of each bar, the lane labels and the hover details (SVG <title>s). Undefined on timeout.
 */
async function timelineShown(page, runId, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const frame of page.frames()) {
      const seen = await frame
        .evaluate(() => ({
          title: document.title,
          csp: document.querySelector('meta[http-equiv="Content-Security-Policy"]')?.getAttribute('content') ?? null,
          heading: document.querySelector('h1')?.textContent ?? '',
          tasks: [...document.querySelectorAll('rect[data-task]')].map((r) => r.getAttribute('data-task')),
          lanes: [...document.querySelectorAll('text.lane-label')].map((t) => t.textContent),
          hovers: [...document.querySelectorAll('rect[data-task] > title')].map((t) => t.textContent),
          scripts: document.querySelectorAll('script').length,
        }))
        .catch(() => undefined);
      if (seen && seen.title === `parex run ${runId}` && seen.tasks.length > 0) return seen;
    }
    await page.waitForTimeout(250);
  }
  return undefined;
}

/** The run ids of the workspace, oldest first (the journal folders are named by start time). */
function runIds() {
  const dir = path.join(workspace, '.parex', 'runs');
  return existsSync(dir) ? readdirSync(dir).filter((d) => existsSync(path.join(dir, d, 'journal.jsonl'))).sort() : [];
}

/** The notifications' messages, joined. */
const toasts = '.notifications-toasts .notification-toast .notification-list-item-message';
const outputView = '.part.panel .output-view, .part.panel [id="workbench.panel.output"]';

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});
let page;
try {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  page = await context.newPage();
  page.on('pageerror', (err) => log(`page error: ${err.message}`));
  log(`opening ${url}`);
  await page.goto(url, { waitUntil: 'domcontentloaded', timeout: 60000 });
  await page.locator('.monaco-workbench').waitFor({ timeout: 60000 });
  // The explorer lists the workspace once the remote file system answers.
  await page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'parex.toml' }).first().waitFor({ timeout: 60000 });
  log('workbench is up');

  // A document the server has no use for (no plan, no callN: line): it is never sent.
  await openFile(page, 'plain.py');
  await runCommand(page, 'View: Close Editor', 'View: Close Editor');
  await openFile(page, 'parex.toml');
  log('parex.toml is open');

  // Run it: "Run Parallel Tasks" from the command palette.
  await runCommand(page, 'Run Parallel Tasks');
  log('ran "Run Parallel Tasks"');

  // While it runs: the cancellable progress notification, and the status bar item.
  const progress = await waitForText(
    page,
    '.notifications-toasts .notification-toast',
    (t) => /Parallel Tasks \(parex\.toml\)/.test(t) && /\d+\/2 done/.test(t),
    30000,
  );
  check(progress !== undefined, `progress notification while running: ${JSON.stringify(progress?.split('\n').slice(0, 3).join(' | '))}`);
  const cancelButtons = await page
    .locator('.notifications-toasts .notification-toast', { hasText: 'Parallel Tasks (parex.toml)' })
    .locator('.monaco-button', { hasText: 'Cancel' })
    .count();
  check(cancelButtons > 0, 'the progress notification can be cancelled');
  const statusBar = await waitForText(page, '.statusbar', (t) => /parex \d\/2/.test(t), 10000);
  check(statusBar !== undefined, 'status bar item shows the run');

  // The end: the summary notification with the speedup.
  const summary = await waitForText(
    page,
    '.notifications-toasts .notification-toast .notification-list-item-message',
    (t) => /Parallel tasks failed: 1 succeeded, 1 failed in .* speedup\)/.test(t),
    60000,
  );
  check(summary !== undefined, `summary notification: ${JSON.stringify(summary?.match(/Parallel tasks[^\n]*/)?.[0])}`);

  // The output channel: every line tagged with its task.
  const output = await waitForText(
    page,
    '.part.panel .output-view, .part.panel [id="workbench.panel.output"]',
    (t) => t.includes('[hello] hello from parex') && t.includes('[broken] about to fail'),
    15000,
  );
  check(output !== undefined, 'output channel has "[hello] hello from parex" and "[broken] about to fail"');

  // The "Parallel Tasks" view: each task's state and elapsed time.
  await runCommand(page, 'Explorer: Focus on Parallel Tasks View', 'Focus on Parallel Tasks View');
  const tree = await waitForText(
    page,
    '[id="workbench.view.explorer"] .pane:has(.pane-header:has-text("Parallel Tasks")) .monaco-list',
    (t) => /hello\s*succeeded · \d/.test(t) && /broken\s*failed · \d/.test(t),
    15000,
  );
  check(tree !== undefined, `Parallel Tasks view: ${JSON.stringify(tree?.replace(/\n+/g, ' | '))}`);

  // The failure as a diagnostic, in the Problems panel.
  await runCommand(page, 'Problems: Focus on Problems View', 'Focus on Problems View');
  const problems = await waitForText(page, '.markers-panel', (t) => /broken failed: exited with code 3/.test(t), 30000);
  check(problems !== undefined, `Problems panel: ${JSON.stringify(problems?.match(/broken failed[^\n]*/)?.[0])}`);

  // Let the workbench settle (tree ticks, problem counts), then take the picture.
  await page.waitForTimeout(800);
  await page.screenshot({ path: screenshot });
  log(`screenshot saved to ${screenshot}`);

  // The task's log, through "Show Parallel Task Log".
  await runCommand(page, 'Show Parallel Task Log');
  const taskRow = page.locator('.quick-input-widget .monaco-list-row', { hasText: 'broken' }).first();
  await taskRow.waitFor({ state: 'visible', timeout: 15000 });
  await page.locator('.quick-input-widget input.input').fill('broken');
  await page.waitForTimeout(150);
  await page.keyboard.press('Enter');
  const logTab = await page
    .locator('.tabs-container .tab.active[aria-label*="broken.log"]')
    .waitFor({ timeout: 15000 })
    .then(() => true, () => false);
  const logText = logTab ? await waitForText(page, '.editor-instance .view-lines', (t) => t.includes('about to fail'), 10000) : undefined;
  check(logTab && logText !== undefined, 'Show Parallel Task Log opens broken.log with its output');

  // "Retry Failed Parallel Tasks": a resume of the last run; the succeeded task is kept.
  await runCommand(page, 'Notifications: Clear All Notifications', 'Clear All Notifications');
  await runCommand(page, 'Retry Failed Parallel Tasks');
  const retried = await waitForText(
    page,
    '.notifications-toasts .notification-toast .notification-list-item-message',
    (t) => /Parallel tasks failed: 0 succeeded, 1 failed, 1 kept from the earlier run/.test(t),
    60000,
  );
  check(retried !== undefined, `Retry Failed Parallel Tasks reruns only the failed task: ${JSON.stringify(retried?.match(/Parallel tasks[^\n]*/)?.[0])}`);

  // "Show Run Timeline", from the summary's "Show Timeline" button: the run that just ended, in a
  // webview beside the editor; the page is `parex-lsp report`'s, with only its inline styles allowed.
  const [firstRunId, retryRunId] = runIds();
  const timelineButton = page
    .locator('.notifications-toasts .notification-toast', { hasText: /1 kept from the earlier run/ })
    .locator('.monaco-button', { hasText: 'Show Timeline' })
    .first();
  const offered = await timelineButton.waitFor({ state: 'visible', timeout: 10000 }).then(() => true, () => false);
  check(offered, 'the summary notification offers "Show Timeline"');
  if (offered) await timelineButton.click();
  const timelineTab = '.tabs-container .tab[aria-label*="Run Timeline — "]';
  const retryTimeline = offered ? await timelineShown(page, retryRunId, 30000) : undefined;
  const retryTab = await page.locator(`.tabs-container .tab[aria-label*="Run Timeline — ${retryRunId}"]`).count();
  check(
    retryTimeline !== undefined && retryTab === 1 && retryTimeline.tasks.includes('broken') && !retryTimeline.tasks.includes('hello'),
    `"Show Timeline" opened the retried run ${retryRunId} in a webview tab: ${JSON.stringify(retryTimeline)}`,
  );
  check(
    retryTimeline !== undefined &&
      /default-src 'none'/.test(retryTimeline.csp ?? '') &&
      /script-src 'none'/.test(retryTimeline.csp ?? '') &&
      /style-src 'unsafe-inline'/.test(retryTimeline.csp ?? '') &&
      retryTimeline.scripts === 0,
    `the timeline's CSP allows its inline styles only: ${JSON.stringify(retryTimeline?.csp)}`,
  );
  // From the palette, with two runs: a pick of runs, newest first; the older one is chosen.
  await runCommand(page, 'Notifications: Clear All Notifications', 'Clear All Notifications');
  await runCommand(page, 'Show Run Timeline');
  const runRows = page.locator('.quick-input-widget .monaco-list-row');
  await runRows.first().waitFor({ state: 'visible', timeout: 30000 });
  const pickTexts = (await runRows.allInnerTexts()).map((t) => t.replace(/\s+/g, ' '));
  check(
    pickTexts.length === 2 && pickTexts[0].includes(retryRunId) && pickTexts[1].includes(firstRunId) && /failed · parex\.toml/.test(pickTexts[1]),
    `Show Run Timeline offers both runs, newest first: ${JSON.stringify(pickTexts)}`,
  );
  await page.locator('.quick-input-widget input.input').fill(firstRunId);
  await page.waitForTimeout(200);
  await page.keyboard.press('Enter');
  const firstTimeline = await timelineShown(page, firstRunId, 30000);
  check(
    firstTimeline !== undefined &&
      ['hello', 'broken'].every((t) => firstTimeline.tasks.includes(t)) &&
      firstTimeline.lanes.includes('slot 1') &&
      firstTimeline.lanes.includes('slot 2') &&
      firstTimeline.hovers.some((h) => /^broken, attempt 1: failed/.test(h)) &&
      new RegExp(`^Run ${firstRunId} — failed$`).test(firstTimeline.heading),
    `the first run's timeline: both tasks in two slots, hover details on the bars: ${JSON.stringify(firstTimeline)}`,
  );
  const timelineTabs = await page.locator(timelineTab).count();
  const firstTab = await page.locator(`.tabs-container .tab[aria-label*="Run Timeline — ${firstRunId}"]`).count();
  check(timelineTabs === 1 && firstTab === 1, `one timeline tab, now titled with the run picked (${timelineTabs} tab(s))`);
  await page.screenshot({ path: path.join(artifacts, 'timeline.png') });

  // "Check Setup": the doctor's checks in the output channel and a verdict. Healthy: parex.toml's shell tasks.
  await openFile(page, 'parex.toml');
  await runCommand(page, 'Check Setup');
  const healthy = await waitForText(page, toasts, (t) => /Parex setup: everything needed is in place/.test(t), 30000);
  check(healthy !== undefined, 'Check Setup on parex.toml: "everything needed is in place"');
  // Failing: a plan whose agent's executable does not exist.
  await runCommand(page, 'Notifications: Clear All Notifications', 'Clear All Notifications');
  await openFile(page, 'ghost.parex.toml');
  await runCommand(page, 'Check Setup');
  const unhealthy = await waitForText(page, toasts, (t) => /Parex setup: 1 problem\(s\): agent ghost: `parex-e2e-no-such-agent` not found on PATH/.test(t), 30000);
  check(unhealthy !== undefined, `Check Setup on ghost.parex.toml names the missing agent: ${JSON.stringify(unhealthy?.match(/Parex setup[^\n]*/)?.[0])}`);
  const details = page.locator('.notifications-toasts .notification-toast', { hasText: 'Parex setup: 1 problem' }).locator('.monaco-button', { hasText: 'Show Details' });
  check((await details.count()) > 0, 'the verdict offers "Show Details"');
  if ((await details.count()) > 0) await details.first().click();
  const setupLines = await waitForText(
    page,
    outputView,
    (t) =>
      /✓ agent shell: runs prompts with \S+/.test(t) &&
      /⚠ git repository: /.test(t) &&
      /everything needed is in place/.test(t) &&
      /✗ agent ghost: `parex-e2e-no-such-agent` not found on PATH/.test(t) &&
      /1 problem\(s\) to fix/.test(t),
    10000,
  );
  check(setupLines !== undefined, '"Show Details" shows the checks of both in the output channel: ✓ agent shell, ⚠ git repository, ✗ agent ghost');
  await runCommand(page, 'View: Close All Editors', 'View: Close All Editors');

  // The server's "Retry task" quick fix on the diagnostic: a run this window did not start,
  // shown all the same (view, output, summary).
  await runCommand(page, 'Notifications: Clear All Notifications', 'Clear All Notifications');
  await openFile(page, 'parex.toml');
  await goToLine(page, 10); // the `id = "broken"` line
  await page.keyboard.press('Control+.');
  const fix = page.locator('.action-widget .monaco-list-row', { hasText: 'Retry task broken' }).first();
  const fixShown = await fix.waitFor({ state: 'visible', timeout: 15000 }).then(() => true, () => false);
  check(fixShown, 'the failure offers the "Retry task broken" quick fix');
  if (fixShown) {
    // The menu takes keys, not clicks: move to the entry, then Enter.
    for (let i = 0; i < 4; i++) {
      const focused = await textOf(page, '.action-widget .monaco-list-row.focused');
      if (focused.includes('Retry task broken')) break;
      await page.keyboard.press('ArrowDown');
    }
    await page.keyboard.press('Enter');
    const fixed = await waitForText(
      page,
      '.notifications-toasts .notification-toast .notification-list-item-message',
      (t) => /Parallel tasks failed: 0 succeeded, 1 failed, 1 kept from the earlier run/.test(t),
      60000,
    );
    check(fixed !== undefined, 'the quick fix reran the task and the run was shown to its end');
  }

  // callN: lines of a selection in any document: the selected calls run, the others do not.
  await runCommand(page, 'Notifications: Clear All Notifications', 'Clear All Notifications');
  await openFile(page, 'notes.md');
  log('notes.md is open');
  await goToLine(page, 3);
  await page.keyboard.press('Home');
  await page.keyboard.press('Shift+ArrowDown');
  await page.keyboard.press('Shift+ArrowDown');
  log('selected the call1 and call2 lines');
  await runCommand(page, 'Run Parallel Tasks');
  log('ran "Run Parallel Tasks"');
  const calls = await waitForText(
    page,
    '.notifications-toasts .notification-toast .notification-list-item-message',
    (t) => /Parallel tasks done: 2 succeeded in /.test(t),
    60000,
  );
  check(calls !== undefined, `the selected call1 and call2 ran (not call3): ${JSON.stringify(calls?.match(/Parallel tasks[^\n]*/)?.[0])}`);
  await runCommand(page, 'Explorer: Focus on Parallel Tasks View', 'Focus on Parallel Tasks View');
  const callTree = await waitForText(
    page,
    '[id="workbench.view.explorer"] .pane:has(.pane-header:has-text("Parallel Tasks")) .monaco-list',
    (t) => /call1\s*succeeded/.test(t) && /call2\s*succeeded/.test(t),
    15000,
  );
  check(callTree !== undefined && !/call3/.test(callTree), `Parallel Tasks view lists call1 and call2 only: ${JSON.stringify(callTree?.replace(/\n+/g, ' | '))}`);

  // callN: lines of an untitled document: synced once it has one, and run as {uri, range}.
  await runCommand(page, 'Notifications: Clear All Notifications', 'Clear All Notifications');
  await runCommand(page, 'File: New Untitled Text File', 'New Untitled Text File');
  await page.locator('.tabs-container .tab.active[aria-label*="Untitled"]').waitFor({ timeout: 15000 });
  await page.waitForTimeout(300);
  await page.keyboard.type('call1: echo from an untitled document\n');
  await runCommand(page, 'Run Parallel Tasks');
  const untitled = await waitForText(
    page,
    '.notifications-toasts .notification-toast .notification-list-item-message',
    (t) => /Parallel tasks done: 1 succeeded in /.test(t),
    30000,
  );
  const untitledTree = await waitForText(
    page,
    '[id="workbench.view.explorer"] .pane:has(.pane-header:has-text("Parallel Tasks")) .monaco-list',
    (t) => /call1\s*succeeded · .* · from an untitled document/.test(t),
    10000,
  );
  check(untitled !== undefined && untitledTree !== undefined, `the calls of an untitled document ran: ${JSON.stringify(untitledTree?.replace(/\n+/g, ' | '))}`);

  // Cancel Parallel Tasks: a long task ends as cancelled, and the summary says so.
  await runCommand(page, 'Notifications: Clear All Notifications', 'Clear All Notifications');
  await openFile(page, 'slow.parex.toml');
  await runCommand(page, 'Run Parallel Tasks');
  const slowRunning = await waitForText(
    page,
    '.notifications-toasts .notification-toast',
    (t) => /Parallel Tasks \(slow\.parex\.toml\)/.test(t) && /0\/1 done · 1 running/.test(t),
    30000,
  );
  check(slowRunning !== undefined, 'the long task runs');
  await runCommand(page, 'Cancel Parallel Tasks');
  const cancelled = await waitForText(
    page,
    '.notifications-toasts .notification-toast .notification-list-item-message',
    (t) => /Parallel tasks cancelled: 0 succeeded, 1 cancelled in /.test(t),
    30000,
  );
  check(cancelled !== undefined, `Cancel Parallel Tasks: ${JSON.stringify(cancelled?.match(/Parallel tasks[^\n]*/)?.[0])}`);

  // A callN: fan-out to a model agent: the answers open beside the editor, one section per call.
  const answersTab = '.tabs-container .tab[aria-label*="parex answers — "]';
  check((await page.locator(answersTab).count()) === 0, 'runs without model answers open no answers document');
  check(Boolean(modelUrl), `the fake model server is up: ${modelUrl}`);
  // The workspace gains a model agent, and callN: prompts go to it (no longer to the shell).
  const planPath = path.join(workspace, 'parex.toml');
  writeFileSync(planPath, readFileSync(planPath, 'utf8').replace('call_agent = "shell"', 'call_agent = "local"'));
  appendFileSync(planPath, `\n[agents.local]\nkind = "openai"\nbase_url = "${modelUrl}"\nmodel = "fake"\n`);
  log('declared [agents.local] in parex.toml');
  await runCommand(page, 'Notifications: Clear All Notifications', 'Clear All Notifications');
  await openFile(page, 'answers.md');
  await runCommand(page, 'Run Parallel Tasks');
  log('ran "Run Parallel Tasks" on answers.md');
  const fanout = await waitForText(
    page,
    '.notifications-toasts .notification-toast .notification-list-item-message',
    (t) => /Parallel tasks failed: 2 succeeded, 1 failed in /.test(t),
    60000,
  );
  check(fanout !== undefined, `the fan-out ran (call3 has no answer on the model server): ${JSON.stringify(fanout?.match(/Parallel tasks[^\n]*/)?.[0])}`);
  const answersLines = '.editor-group-container:has(.tab.active[aria-label*="parex answers — "]) .view-lines';
  const expected = [
    /^# parex answers — \S+/m,
    /^## call1$/m,
    /^It declares two shell tasks, hello and broken\.$/m,
    /^\*12 prompt \+ 8 completion tokens\*$/m,
    /^## call2$/m,
    /^Two tasks writing one file, and flaky tests\.$/m,
    /^## call3$/m,
    /^\*\*failed\*\* \(api-error\): HTTP 400/m, // markdown editors wrap long lines: only its start
  ];
  const answers = await waitForText(page, answersLines, (t) => expected.every((re) => re.test(t)), 15000);
  const seen = answers ?? (await textOf(page, answersLines).catch(() => ''));
  // The prompts come from the server (runStarted's tasks), never from the extension reading callN: lines.
  const prompts = [/^> summarise what parex\.toml declares$/m, /^> name two risks of running tasks in parallel$/m];
  const announced = announcedTasks(seen.match(/^# parex answers — (\S+)/m)?.[1]);
  if (announced?.some((t) => typeof t?.prompt === 'string')) {
    check(prompts.every((re) => re.test(seen)), 'the answers quote the prompts the server announced in runStarted');
    expected.push(...prompts);
  } else {
    check(announced !== undefined && !/^> /m.test(seen), `no prompts in the answers: this server's runStarted lists ${JSON.stringify(announced)}`);
  }
  check(answers !== undefined, `the answers document shows both answers and the failed call: ${JSON.stringify(seen.split('\n').slice(0, 40).join(' | '))}`);
  const order = ['## call1', '## call2', '## call3'].map((h) => seen.indexOf(h));
  check(order.every((i, n) => i >= 0 && (n === 0 || i > order[n - 1])), `sections in plan order: ${order}`);
  const groups = await page.locator('.editor-group-container').count();
  const notesBeside = await page.locator('.editor-group-container:has(.tab.active[aria-label*="answers.md"]) .tab.active[aria-label*="answers.md"]').count();
  check(groups >= 2 && notesBeside === 1, `the answers open beside answers.md (${groups} editor groups)`);

  // Closed, then reopened with "Show Parallel Task Answers"; it is markdown.
  const tab = page.locator(answersTab).first();
  await tab.hover();
  await tab.locator('.tab-actions .action-label').first().click();
  const closed = await page.locator(answersTab).waitFor({ state: 'detached', timeout: 15000 }).then(() => true, () => false);
  check(closed, 'the answers document was closed');
  await runCommand(page, 'Show Parallel Task Answers');
  const reopened = await waitForText(page, answersLines, (t) => expected.every((re) => re.test(t)), 15000);
  check(reopened !== undefined, 'Show Parallel Task Answers reopened the answers of the last run');
  // The code editor's element names its document's language.
  const markdown = await page
    .locator('.editor-group-container:has(.tab.active[aria-label*="parex answers — "]) [data-mode-id="markdown"]')
    .first()
    .waitFor({ timeout: 10000 })
    .then(() => true, () => false);
  check(markdown, 'the answers document is markdown');

  // Retry Failed: call3 runs again (and fails again); call1 and call2 are kept, and their
  // answers, which the server does not send again, come from the run before.
  const firstRun = seen.match(/^# parex answers — (\S+)/m)?.[1];
  await runCommand(page, 'Notifications: Clear All Notifications', 'Clear All Notifications');
  await runCommand(page, 'Retry Failed Parallel Tasks');
  const retriedFanout = await waitForText(
    page,
    '.notifications-toasts .notification-toast .notification-list-item-message',
    (t) => /Parallel tasks failed: 0 succeeded, 1 failed, 2 kept from the earlier run/.test(t),
    60000,
  );
  check(retriedFanout !== undefined, `Retry Failed reran call3 only: ${JSON.stringify(retriedFanout?.match(/Parallel tasks[^\n]*/)?.[0])}`);
  const kept = await waitForText(
    page,
    answersLines,
    (t) => {
      const run = t.match(/^# parex answers — (\S+)/m)?.[1];
      const keptLines = t.split('\n').filter((l) => l === `_kept from run ${firstRun}_`).length;
      return run !== undefined && run !== firstRun && keptLines === 2 && expected.filter((re) => !/completion/.test(re.source)).every((re) => re.test(t));
    },
    15000,
  );
  check(kept !== undefined, `the retried run's answers keep call1's and call2's from run ${firstRun}: ${JSON.stringify(kept ?? (await textOf(page, answersLines).catch(() => '')))}`);
  const answerTabs = await page.locator(answersTab).count();
  const answerGroups = await page.locator('.editor-group-container:has(.tab[aria-label*="parex answers — "])').count();
  check(answerTabs === 2 && answerGroups === 1, `the new answers open where the last ones are (${answerTabs} tabs in ${answerGroups} group)`);

  // "Plan Parallel Tasks…": the request goes to the workspace's planning agent (the model server);
  // its first draft has a cycle and an unknown agent, the second validates. The draft opens beside
  // the editor as an untitled plan.parex.toml.
  writeFileSync(planPath, readFileSync(planPath, 'utf8').replace('call_agent = "local"', 'call_agent = "local"\nplan_agent = "local"\nplan_rounds = 3'));
  log('[run] plan_agent = "local" in parex.toml');
  await runCommand(page, 'Notifications: Clear All Notifications', 'Clear All Notifications');
  await runCommand(page, 'View: Close All Editors', 'View: Close All Editors');
  await openFile(page, 'notes.md');
  await runCommand(page, 'Plan Parallel Tasks');
  const requestBox = page.locator('.quick-input-widget', { hasText: 'What should the plan do?' });
  await requestBox.waitFor({ timeout: 15000 });
  await page.locator('.quick-input-widget input.input').fill('add rate limiting to the API');
  await page.keyboard.press('Enter');
  const drafted = await waitForText(page, toasts, (t) => /drafted plan\.parex\.toml in 2 rounds; it validates/.test(t), 60000);
  check(drafted !== undefined, `the plan validates after one round of feedback: ${JSON.stringify(drafted?.match(/parex: drafted[^\n]*/)?.[0])}`);
  const draftGroup = '.editor-group-container:has(.tab.active[aria-label*="plan.parex.toml"])';
  const draftText = await waitForText(
    page,
    `${draftGroup} .view-lines`,
    (t) => /id = "limiter"/.test(t) && /id = "wire"/.test(t) && /depends_on = \["limiter"\]/.test(t) && /agent = "shell"/.test(t),
    15000,
  );
  check(draftText !== undefined && !/wizard/.test(draftText), `the draft holds the valid plan's tasks limiter and wire: ${JSON.stringify(draftText?.split('\n').filter((l) => /id =|agent =|depends_on/.test(l)))}`);
  const draftGroups = await page.locator('.editor-group-container').count();
  const notesStill = await page.locator('.editor-group-container .tab[aria-label*="notes.md"]').count();
  check(draftGroups >= 2 && notesStill === 1, `the draft opened beside notes.md (${draftGroups} editor groups)`);
  check(!existsSync(path.join(workspace, 'plan.parex.toml')), 'nothing was written: the draft is unsaved until the person saves it');
  // A request the model never gets right: the last draft opens as plan-2.parex.toml (plan.parex.toml
  // is taken by the open draft), its problems in the Problems panel. Asked from the draft (an
  // untitled document: no file goes with the request).
  await runCommand(page, 'Notifications: Clear All Notifications', 'Clear All Notifications');
  await runCommand(page, 'Plan Parallel Tasks');
  await requestBox.waitFor({ timeout: 15000 });
  await page.locator('.quick-input-widget input.input').fill('a plan the model never gets right');
  await page.keyboard.press('Enter');
  const stuck = await waitForText(page, toasts, (t) => /drafted plan-2\.parex\.toml in 3 rounds; \d+ problems? left/.test(t), 60000);
  check(stuck !== undefined, `the third draft still has problems: ${JSON.stringify(stuck?.match(/parex: drafted[^\n]*/)?.[0])}`);
  await runCommand(page, 'Problems: Focus on Problems View', 'Focus on Problems View');
  const planProblems = await waitForText(page, '.markers-panel', (t) => /plan-2\.parex\.toml/.test(t) && /unknown agent `wizard`/.test(t) && /cycle/.test(t), 20000);
  check(planProblems !== undefined, `the draft's problems are diagnostics on plan-2.parex.toml: ${JSON.stringify(planProblems?.split('\n').filter((l) => /wizard|cycle|plan-2/.test(l)))}`);
  // A marker's message, then its source and code, then `[Ln N, Col M]`, each on a line of its own.
  const wizardAt = (t) => Number(t?.match(/unknown agent `wizard`[^]*?\[Ln (\d+)/)?.[1]);
  const wizardLine = wizardAt(planProblems);
  // The person edits the draft (a new first line): the server does not lint an unsaved draft, so its
  // problems stay, one line further down.
  await page.locator('.editor-group-container:has(.tab.active[aria-label*="plan-2.parex.toml"]) .view-lines').first().click();
  await page.keyboard.press('Control+Home');
  await page.keyboard.press('Enter');
  const moved = await waitForText(page, '.markers-panel', (t) => wizardAt(t) === wizardLine + 1, 10000);
  const nowAt = wizardAt(moved ?? (await textOf(page, '.markers-panel').catch(() => '')));
  check(Number.isInteger(wizardLine) && moved !== undefined, `an edit above moves the draft's problems with their lines (wizard at line ${wizardLine}, then ${nowAt})`);
  await page.screenshot({ path: path.join(artifacts, 'plan.png') });

  const runs = path.join(workspace, '.parex', 'runs');
  check(existsSync(runs) && readdirSync(runs).length > 0, `the server kept the run in ${runs}`);

  // Document sync: plan files and callN: documents reach the server, other files never do.
  const trace = serverTrace();
  const opened = [...trace.matchAll(/"uri": "([^"]+)"/g)].map((m) => decodeURIComponent(m[1]));
  check(
    opened.some((u) => u.endsWith('/parex.toml')) && opened.some((u) => u.endsWith('/notes.md')) && opened.some((u) => u.startsWith('untitled:')),
    `the server was sent the plan, the callN: documents and the untitled one (${new Set(opened).size} documents in the trace)`,
  );
  check(!opened.some((u) => u.endsWith('/plain.py')), 'plain.py (no plan, no callN: line) was never sent to the server');
  const start = trace.match(/^starting \((\w+)\): (.*)$/m);
  check(start?.[1] === 'bundled' && / -m parex_lsp --stdio$/.test(start[2]), `the server bundled in the extension ran, with no parex-lsp on PATH and no setting: ${JSON.stringify(start?.[0])}`);

  // Review mode, in a second workspace: a git repository whose plan runs in worktrees with
  // merge = "review". The task ends `ready`; its changed file's diff opens from the view; accepting
  // it merges its branch into main.
  check(Boolean(reviewUrl && reviewWorkspace), 'the review workspace is set up');
  const reviewPage = await context.newPage();
  reviewPage.on('pageerror', (err) => log(`page error: ${err.message}`));
  await page.close();
  page = reviewPage;
  log(`opening ${reviewUrl}`);
  await page.goto(reviewUrl, { waitUntil: 'domcontentloaded', timeout: 60000 });
  await page.locator('.monaco-workbench').waitFor({ timeout: 60000 });
  await page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'parex.toml' }).first().waitFor({ timeout: 60000 });
  await openFile(page, 'parex.toml');
  await runCommand(page, 'Run Parallel Tasks');
  log('ran "Run Parallel Tasks" in the review workspace');
  await runCommand(page, 'Explorer: Focus on Parallel Tasks View', 'Focus on Parallel Tasks View');
  const pane = '[id="workbench.view.explorer"] .pane:has(.pane-header:has-text("Parallel Tasks"))';
  const readyTree = await waitForText(
    page,
    `${pane} .monaco-list`,
    (t) =>
      /edit\s*ready for review · .*\+1 −0 in 1 file/.test(t) &&
      /greeting\.txt\s*modified/.test(t) &&
      /note\s*ready for review/.test(t) &&
      /todo\.md\s*added/.test(t),
    60000,
  );
  check(readyTree !== undefined, `both tasks are ready, their changed files under them: ${JSON.stringify((readyTree ?? (await textOf(page, `${pane} .monaco-list`).catch(() => ''))).replace(/\n+/g, ' | '))}`);
  const reviewStatus = await waitForText(page, '.statusbar', (t) => /parex 0\/2 · 2 to review/.test(t), 10000);
  check(reviewStatus !== undefined, 'the status bar says two tasks wait for review');
  const paneDescription = await textOf(page, `${pane} .pane-header`).catch(() => '');
  check(/2 ready for review/.test(paneDescription), `the view's header says so too: ${JSON.stringify(paneDescription.replace(/\n+/g, ' '))}`);

  // A click on the changed file: the diff editor, base on the left, the task's version on the right.
  await page.locator(`${pane} .monaco-list-row`, { hasText: 'greeting.txt' }).first().click();
  const diffTabShown = await page
    .locator('.tabs-container .tab.active[aria-label*="greeting.txt (main ↔ edit)"]')
    .waitFor({ timeout: 15000 })
    .then(() => true, () => false);
  check(diffTabShown, 'a click on greeting.txt opens "greeting.txt (main ↔ edit)"');
  const original = await waitForText(page, '.monaco-diff-editor .editor.original .view-lines', (t) => /hello/.test(t), 15000);
  const modified = await waitForText(page, '.monaco-diff-editor .editor.modified .view-lines', (t) => /hello[\s\S]*reviewed from VS Code/.test(t), 15000);
  check(
    original !== undefined && !/reviewed/.test(original) && modified !== undefined,
    `the diff editor shows both sides: base ${JSON.stringify(original)}, task ${JSON.stringify(modified)}`,
  );
  // The task's row hovered: its inline buttons (accept, reject, retry with feedback, log) show.
  const readyRow = page.locator(`${pane} .monaco-list-row`, { hasText: /edit\s*ready for review/ }).first();
  await readyRow.hover();
  await page.waitForTimeout(250); // the buttons show at once; the row's tooltip, over the files, only later
  await page.screenshot({ path: reviewScreenshot });
  log(`screenshot saved to ${reviewScreenshot}`);

  // Accept, from the task's inline action: merged into main, and the run ends.
  await readyRow.hover();
  await readyRow.locator('.action-label[aria-label^="Accept Parallel Task"]').click({ timeout: 10000 });
  const acceptedTree = await waitForText(page, `${pane} .monaco-list`, (t) => /edit\s*succeeded/.test(t) && !/greeting\.txt/.test(t), 30000);
  check(acceptedTree !== undefined, 'accepted: the view shows edit succeeded, its files gone from under it');

  // Retry with feedback, from the palette: the task runs again with the feedback, and is ready again.
  await runCommand(page, 'Notifications: Clear All Notifications', 'Clear All Notifications');
  await runCommand(page, 'Retry Parallel Task with Feedback');
  await page.locator('.quick-input-widget .monaco-list-row', { hasText: 'note' }).first().waitFor({ timeout: 15000 });
  await page.keyboard.press('Enter');
  const feedbackBox = page.locator('.quick-input-widget', { hasText: 'What should the agent do differently?' });
  await feedbackBox.waitFor({ timeout: 15000 });
  await page.locator('.quick-input-widget input.input').fill('write it as a checklist');
  await page.keyboard.press('Enter');
  const retriedOutput = await waitForText(
    page,
    '.part.panel .output-view, .part.panel [id="workbench.panel.output"]',
    (t) => /\[note\] ── review: retry \(write it as a checklist\)[\s\S]*\[note\] ── ready for review/.test(t),
    60000,
  );
  check(retriedOutput !== undefined, 'Retry Parallel Task with Feedback: note ran again and is ready again');
  // The palette lists the review commands by the `parex.hasReady` context, set with the view's update
  // (which may follow the output line): wait for the view before opening the palette.
  await waitForText(page, `${pane} .monaco-list`, (t) => /note\s*ready for review/.test(t), 15000);
  await page.waitForTimeout(300);
  await runCommand(page, 'Show Parallel Task Changes');
  await page.locator('.quick-input-widget .monaco-list-row', { hasText: 'note' }).first().waitFor({ timeout: 15000 });
  await page.keyboard.press('Enter');
  const noteDiff = await waitForText(page, '.monaco-diff-editor .editor.modified .view-lines', (t) => /write it as a checklist/.test(t), 15000);
  check(noteDiff !== undefined, `Show Parallel Task Changes: todo.md now holds the feedback: ${JSON.stringify(noteDiff)}`);

  // Reject, from the palette: the run ends, the rejected task counted apart, its branch kept.
  await runCommand(page, 'Reject Parallel Task');
  await page.locator('.quick-input-widget .monaco-list-row', { hasText: 'note' }).first().waitFor({ timeout: 15000 });
  await page.keyboard.press('Enter');
  const ended = await waitForText(
    page,
    '.notifications-toasts .notification-toast .notification-list-item-message',
    (t) => /Parallel tasks failed: 1 succeeded, 0 failed, 1 rejected in /.test(t),
    60000,
  );
  check(ended !== undefined, `the last decision ends the run: ${JSON.stringify(ended?.match(/Parallel tasks[^\n]*/)?.[0])}`);
  const endedTree = await waitForText(page, `${pane} .monaco-list`, (t) => /edit\s*succeeded/.test(t) && /note\s*rejected/.test(t), 15000);
  check(endedTree !== undefined, `the view: ${JSON.stringify((endedTree ?? '').replace(/\n+/g, ' | '))}`);
  const git = (...args) => execFileSync('git', ['-C', reviewWorkspace, ...args], { encoding: 'utf8' });
  // The first parent of main's tip is the commit the repository started with: the task was merged (--no-ff).
  const merges = git('log', '--merges', '--first-parent', '--format=%s', 'main');
  const onMain = git('show', 'main:greeting.txt');
  const inCheckout = readFileSync(path.join(reviewWorkspace, 'greeting.txt'), 'utf8');
  check(
    /^parex: merge task edit \(run \S+\)$/m.test(merges) && onMain === 'hello\nreviewed from VS Code\n' && inCheckout === onMain,
    `the change is on main: merges ${JSON.stringify(merges.trim())}, greeting.txt ${JSON.stringify(onMain)}`,
  );
  const keptBranch = git('branch', '--list', 'parex/*/note').trim();
  const todoOnMain = git('ls-tree', '--name-only', 'main').split('\n').includes('todo.md');
  check(keptBranch !== '' && !todoOnMain, `the rejected task's branch is kept (${keptBranch}) and main has no todo.md`);
} catch (err) {
  check(false, `driver error: ${err instanceof Error ? err.stack : String(err)}`);
} finally {
  if (page && checks.some((c) => !c.ok)) {
    await page.screenshot({ path: path.join(artifacts, 'failure.png') }).catch(() => {});
  }
  await browser.close();
}

const failed = checks.filter((c) => !c.ok);
console.log(`${checks.length - failed.length} passed, ${failed.length} failed`);
process.exit(failed.length === 0 && checks.length > 0 ? 0 : 1);
