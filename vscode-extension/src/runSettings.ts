// The settings that shape a run started from the editor, added to `parex/run`'s params: pure, no
// `vscode` (ctx.ts reads the configuration and passes it in).
import type { RunParams } from './protocol';

export interface RunSettings {
  /** `parex.maxConcurrency`: a positive integer, else the plan's. */
  maxConcurrency?: unknown;
  /** `parex.executor`: `local` or `ray`, else the plan's. */
  executor?: unknown;
  /** `parex.rayAddress`: the Ray cluster to use, else the plan's (or Ray's own default). */
  rayAddress?: unknown;
}

export const EXECUTORS = ['local', 'ray'] as const;

/**
 * `params` with the settings that are set (and valid) added; what the request already says wins
 * (a retry keeps what its run had).
 */
export function withRunSettings<P extends Omit<RunParams, 'workDoneToken'>>(params: P, settings: RunSettings): P {
  const out: P = { ...params };
  const { maxConcurrency, executor, rayAddress } = settings;
  if (out.maxConcurrency === undefined && typeof maxConcurrency === 'number' && Number.isInteger(maxConcurrency) && maxConcurrency > 0) {
    out.maxConcurrency = maxConcurrency;
  }
  if (out.executor === undefined && typeof executor === 'string' && (EXECUTORS as readonly string[]).includes(executor)) {
    out.executor = executor as RunParams['executor'];
  }
  if (out.rayAddress === undefined && typeof rayAddress === 'string' && rayAddress.trim() !== '') {
    out.rayAddress = rayAddress.trim();
  }
  return out;
}
