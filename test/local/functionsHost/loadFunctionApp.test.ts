import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { resolveEntryPoints } from '../../../local/functionsHost/loadFunctionApp';

describe('resolveEntryPoints (package.json main)', () => {
  let root: string;

  beforeAll(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'functions-host-main-'));
    for (const file of [
      'dist/functions/b.js',
      'dist/functions/a.js',
      'dist/functions/a.js.map',
      'dist/other/index.js',
    ]) {
      await mkdir(path.dirname(path.join(root, file)), { recursive: true });
      await writeFile(path.join(root, file), '');
    }
    await mkdir(path.join(root, 'dist', 'functions', 'folder.js'), { recursive: true });
  });

  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const relative = async (pattern: string): Promise<string[]> =>
    (await resolveEntryPoints(root, pattern)).map((file) => path.relative(root, file).split(path.sep).join('/'));

  it('expands * in the file name, sorted, files only', async () => {
    expect(await relative('dist/functions/*.js')).toEqual(['dist/functions/a.js', 'dist/functions/b.js']);
  });

  it('expands wildcards in folder names and ?', async () => {
    expect(await relative('dist/*/index.js')).toEqual(['dist/other/index.js']);
    expect(await relative('./dist/functions/?.js')).toEqual(['dist/functions/a.js', 'dist/functions/b.js']);
  });

  it('takes a plain path as is, and matches nothing that is not there', async () => {
    expect(await relative('dist/other/index.js')).toEqual(['dist/other/index.js']);
    expect(await relative('dist/missing/*.js')).toEqual([]);
  });

  it('refuses ** with a clear message', async () => {
    await expect(resolveEntryPoints(root, 'dist/**/*.js')).rejects.toThrow(/"\*\*" is not supported/);
  });
});
