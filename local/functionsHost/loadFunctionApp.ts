import { readdir, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { FunctionsCoreModule, RegisteredFunction } from './functionsCoreModule';
import type { AppStartContext } from './functionsCoreTypes';
import type { HostLogger } from './hostLogger';
import { readJsonFile } from './hostSettings';

export interface LoadedFunctionApp {
  /** package.json `name`, or the folder name. */
  name: string;
  entryPoints: string[];
  functions: RegisteredFunction[];
}

/** Raised when `@azure/functions` ran without the host's core module, so it skipped every registration. */
export class FunctionsLibraryTestModeError extends Error {
  constructor() {
    super(
      '@azure/functions is in "test mode": it was used (an app.* call or hook) before the local host installed ' +
        '@azure/functions-core, so it skipped every function registration. Load the app only through the host ' +
        '(startFunctionsHost / main.js) and do not require the app or call app.* before it starts.',
    );
    this.name = 'FunctionsLibraryTestModeError';
  }
}

/**
 * Loads a v4 programming-model app the way the Node.js worker does: every file matching package.json `main`
 * (a path whose segments may hold `*` and `?` wildcards) in order, then the `appStart` hooks. The core module must
 * already be installed. Fails loudly if the library is in test mode or the app registers no function.
 */
export async function loadFunctionApp(
  appRoot: string,
  core: FunctionsCoreModule,
  logger: HostLogger,
): Promise<LoadedFunctionApp> {
  const packageFile = path.join(appRoot, 'package.json');
  const packageJson = (await readJsonFile(packageFile, { optional: false })) as Record<string, unknown> | null;
  if (!packageJson || typeof packageJson !== 'object') {
    throw new Error(`${packageFile} must be a JSON object.`);
  }
  const main = packageJson.main;
  if (typeof main !== 'string' || main.trim() === '') {
    throw new Error(`${packageFile} has no "main": set it to the compiled function files, e.g. "dist/functions/*.js".`);
  }
  const entryPoints = await resolveEntryPoints(appRoot, main);
  if (entryPoints.length === 0) {
    throw new Error(`No file matches package.json "main" ("${main}") under ${appRoot}; build the app first.`);
  }
  if (packageJson.type === 'module' || entryPoints.some((file) => file.endsWith('.mjs'))) {
    throw new Error(
      `${packageFile}: ES module apps ("type": "module" or .mjs files) are not supported by the local host.`,
    );
  }

  if (core.programmingModelSetCount === 0 && isFunctionsLibraryLoaded()) {
    logger.warn('@azure/functions was loaded before the app; if it was already used, it is in test mode.');
  }
  const requireFromApp = createRequire(packageFile);
  for (const file of entryPoints) {
    try {
      requireFromApp(file);
    } catch (error) {
      throw new Error(`Loading ${path.relative(appRoot, file)} failed: ${(error as Error)?.stack ?? String(error)}`);
    }
  }
  core.closeRegistration();

  if (core.programmingModelSetCount === 0 && isFunctionsLibraryLoaded()) {
    throw new FunctionsLibraryTestModeError();
  }
  const functions = [...core.functions.values()];
  if (functions.length === 0) {
    throw new Error(
      `The app registered no function (files: ${entryPoints.map((f) => path.relative(appRoot, f)).join(', ')}).`,
    );
  }
  await rejectHttpStreaming(core);

  const appStartContext: AppStartContext = {
    hookData: core.appLevelHookData,
    appHookData: core.appHookData,
    functionAppDirectory: appRoot,
  };
  await core.runHooks('appStart', appStartContext);

  const name =
    typeof packageJson.name === 'string' && packageJson.name !== '' ? packageJson.name : path.basename(appRoot);
  return { name, entryPoints, functions };
}

/**
 * The worker asks the programming model for its capabilities at start; with `app.setup({ enableHttpStream: true })`
 * the library then expects the host to proxy HTTP requests to it, which this host does not do.
 */
async function rejectHttpStreaming(core: FunctionsCoreModule): Promise<void> {
  const capabilities = await core.programmingModel?.getCapabilities?.({});
  if (capabilities && 'HttpUri' in capabilities) {
    throw new Error('app.setup({ enableHttpStream: true }) is not supported by the local Functions host.');
  }
}

function isFunctionsLibraryLoaded(): boolean {
  const marker = `${path.sep}@azure${path.sep}functions${path.sep}`;
  return Object.keys(require.cache).some((file) => file.includes(marker));
}

/**
 * Expands a package.json `main` pattern relative to `root`: `/`-separated segments, each a name or a pattern with
 * `*` (any run of characters except `/`) and `?` (one character). Results are absolute, sorted, files only.
 */
export async function resolveEntryPoints(root: string, pattern: string): Promise<string[]> {
  const segments = pattern
    .replace(/\\/g, '/')
    .replace(/^\.\//, '')
    .split('/')
    .filter((segment) => segment !== '' && segment !== '.');
  if (segments.includes('**')) {
    throw new Error(`package.json "main" pattern "${pattern}": "**" is not supported by the local host; use "*".`);
  }
  let candidates = [path.resolve(root)];
  for (const [index, segment] of segments.entries()) {
    const isLast = index === segments.length - 1;
    const next: string[] = [];
    for (const directory of candidates) {
      if (!/[*?]/.test(segment)) {
        next.push(path.join(directory, segment));
        continue;
      }
      const matcher = wildcardToRegExp(segment);
      let entries: string[];
      try {
        entries = await readdir(directory);
      } catch {
        continue;
      }
      for (const entry of entries.sort()) {
        if (matcher.test(entry)) {
          next.push(path.join(directory, entry));
        }
      }
    }
    candidates = [];
    for (const candidate of next) {
      const info = await stat(candidate).catch(() => undefined);
      if (info && (isLast ? info.isFile() : info.isDirectory())) {
        candidates.push(candidate);
      }
    }
  }
  return candidates.sort();
}

function wildcardToRegExp(segment: string): RegExp {
  const source = segment
    .split('')
    .map((char) => (char === '*' ? '.*' : char === '?' ? '.' : char.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${source}$`);
}
