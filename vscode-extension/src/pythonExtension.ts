// The interpreter the Python extension (ms-python.python) selected, when it is installed: the
// bundled server runs with it. Its API is read loosely: the extension is optional, and a shape
// it does not have means "no interpreter", never an error.
import * as vscode from 'vscode';

const PYTHON_EXTENSION = 'ms-python.python';

interface EnvironmentPath {
  path?: string;
}

interface PythonApi {
  environments?: {
    getActiveEnvironmentPath?: (resource?: vscode.Uri) => EnvironmentPath | undefined;
    resolveEnvironment?: (env: EnvironmentPath | string) => Promise<{ executable?: { uri?: vscode.Uri } } | undefined>;
    onDidChangeActiveEnvironmentPath?: vscode.Event<unknown>;
  };
}

async function api(): Promise<PythonApi | undefined> {
  const ext = vscode.extensions.getExtension<PythonApi>(PYTHON_EXTENSION);
  if (!ext) return undefined;
  try {
    return ext.isActive ? ext.exports : await ext.activate();
  } catch {
    return undefined;
  }
}

/** The selected interpreter's executable for `resource` (the first workspace folder), or undefined. */
export async function selectedInterpreter(resource?: vscode.Uri): Promise<string | undefined> {
  const environments = (await api())?.environments;
  try {
    const envPath = environments?.getActiveEnvironmentPath?.(resource);
    if (!envPath) return undefined;
    const env = await environments?.resolveEnvironment?.(envPath);
    return env?.executable?.uri?.fsPath ?? envPath.path;
  } catch {
    return undefined;
  }
}

/** Calls `listener` when the selected interpreter changes (nothing when the Python extension is absent). */
export async function onInterpreterChange(listener: () => void): Promise<vscode.Disposable | undefined> {
  const event = (await api())?.environments?.onDidChangeActiveEnvironmentPath;
  return typeof event === 'function' ? event(() => listener()) : undefined;
}
