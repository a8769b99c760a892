/**
 * Runs the local Functions host as a child process (`node main.js`), the way the launcher does: @azure/functions keeps
 * global state, so one process hosts one app, and jest's module system would bypass the host's require hook.
 * The host is compiled once per source state into .local/ (git-ignored) with the repository's tsconfig.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..', '..');
const HOST_SOURCE_DIR = path.join(REPO_ROOT, 'local', 'functionsHost');
const BUILD_ROOT = path.join(REPO_ROOT, '.local', 'functionsHost-test-build');
const LISTENING_LINE = /listening on http:\/\/[^\s]+:(\d+)/;

function sourceFingerprint(directory: string): string {
  const hash = createHash('sha256');
  const visit = (folder: string): void => {
    for (const entry of readdirSync(folder, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const file = path.join(folder, entry.name);
      if (entry.isDirectory()) {
        visit(file);
      } else if (entry.name.endsWith('.ts')) {
        const info = statSync(file);
        hash.update(`${file}:${info.size}:${info.mtimeMs}\n`);
      }
    }
  };
  visit(directory);
  return hash.digest('hex').slice(0, 16);
}

/** A build older than this that is not the current one is deleted (ms). */
const STALE_BUILD_AGE_MS = 60 * 60 * 1000;
/** A build lock older than this was left by a crashed test run (ms). */
const STALE_LOCK_AGE_MS = 3 * 60 * 1000;

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Compiles local/functionsHost (and what it imports) unless this source state is already built; returns main.js.
 * Test files run in parallel workers: one builds (holding a lock directory), the others wait for it.
 */
export function buildFunctionsHost(): string {
  const fingerprint = sourceFingerprint(HOST_SOURCE_DIR);
  const buildDir = path.join(BUILD_ROOT, fingerprint);
  const mainJs = path.join(buildDir, 'local', 'functionsHost', 'main.js');
  const lockDir = `${buildDir}.lock`;
  mkdirSync(BUILD_ROOT, { recursive: true });
  for (;;) {
    if (existsSync(mainJs)) {
      return mainJs;
    }
    try {
      mkdirSync(lockDir);
      break;
    } catch {
      const lockAge = Date.now() - (statSync(lockDir, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (lockAge > STALE_LOCK_AGE_MS) {
        rmSync(lockDir, { recursive: true, force: true });
      }
      sleepSync(200);
    }
  }
  try {
    if (!existsSync(mainJs)) {
      compileInto(buildDir);
    }
    removeStaleBuilds(fingerprint);
    return mainJs;
  } finally {
    rmSync(lockDir, { recursive: true, force: true });
  }
}

function compileInto(buildDir: string): void {
  const stagingDir = `${buildDir}.staging-${process.pid}`;
  rmSync(stagingDir, { recursive: true, force: true });
  mkdirSync(stagingDir, { recursive: true });
  writeFileSync(
    path.join(stagingDir, 'tsconfig.json'),
    JSON.stringify({
      extends: path.join(REPO_ROOT, 'tsconfig.json'),
      compilerOptions: { outDir: stagingDir, rootDir: REPO_ROOT, sourceMap: false, types: ['node'] },
      files: [path.join(HOST_SOURCE_DIR, 'main.ts')],
      include: [],
    }),
  );
  const tsc = spawnSync(
    process.execPath,
    [path.join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(stagingDir, 'tsconfig.json')],
    { encoding: 'utf8' },
  );
  if (tsc.status !== 0) {
    rmSync(stagingDir, { recursive: true, force: true });
    throw new Error(`Compiling the Functions host failed:\n${tsc.stdout}${tsc.stderr}`);
  }
  renameSync(stagingDir, buildDir);
}

function removeStaleBuilds(currentFingerprint: string): void {
  for (const entry of readdirSync(BUILD_ROOT)) {
    const dir = path.join(BUILD_ROOT, entry);
    const age = Date.now() - (statSync(dir, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
    if (!entry.startsWith(currentFingerprint) && age > STALE_BUILD_AGE_MS) {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

export interface HostProcessOptions {
  appRoot: string;
  env?: Record<string, string>;
  /** Extra CLI arguments after --app-root and --port 0. */
  args?: string[];
  /** Arguments to node itself, before main.js (e.g. --require). */
  nodeArgs?: string[];
}

export interface HostProcess {
  child: ChildProcess;
  /** Everything written to stdout and stderr so far. */
  output(): string;
  /** Resolves with the first match in the output (past or future); rejects after `timeoutMs` or if the process exits. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
  /** SIGTERM, then SIGKILL after 15 s; resolves with the exit code. */
  stop(): Promise<number | null>;
}

export function spawnFunctionsHost(options: HostProcessOptions): HostProcess {
  const mainJs = buildFunctionsHost();
  const child = spawn(
    process.execPath,
    [...(options.nodeArgs ?? []), mainJs, '--app-root', options.appRoot, '--port', '0', ...(options.args ?? [])],
    { env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const listeners = new Set<() => void>();
  const onData = (chunk: Buffer): void => {
    output += chunk.toString('utf8');
    listeners.forEach((listener) => listener());
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let hasExited = false;
  void exited.then(() => {
    hasExited = true;
    listeners.forEach((listener) => listener());
  });

  const waitForOutput = (pattern: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const match = output.match(pattern);
        if (match) {
          cleanup();
          resolve(match);
        } else if (hasExited) {
          cleanup();
          reject(new Error(`The host exited before printing ${pattern}. Output:\n${output}`));
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`Timed out waiting for ${pattern}. Output:\n${output}`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        listeners.delete(check);
      };
      listeners.add(check);
      check();
    });

  const stop = async (): Promise<number | null> => {
    if (!hasExited) {
      child.kill('SIGTERM');
      const killTimer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(killTimer);
    }
    return exited;
  };
  return { child, output: () => output, waitForOutput, exited, stop };
}

/** Spawns the host and waits until it listens; returns the process and its HTTP base URL. */
export async function startFunctionsHostProcess(
  options: HostProcessOptions,
): Promise<{ host: HostProcess; baseUrl: string; port: number }> {
  const host = spawnFunctionsHost(options);
  try {
    const match = await host.waitForOutput(LISTENING_LINE, 60_000);
    const port = Number(match[1]);
    return { host, port, baseUrl: `http://127.0.0.1:${port}` };
  } catch (error) {
    await host.stop();
    throw error;
  }
}
