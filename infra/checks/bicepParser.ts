/**
 * Parses Bicep with the real tree-sitter Bicep grammar (npm `tree-sitter-bicep`, its wasm build, loaded by
 * `web-tree-sitter` 0.22: no native build). One parser per process; files are parsed whole.
 *
 * Known grammar gap: a string literal whose content starts with `//` (for example `'//'`) is lexed as a
 * comment and reported as a syntax error, although Bicep accepts it. Write such strings another way.
 */
import Parser from 'web-tree-sitter';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { Problem } from './problem';

export type SyntaxNode = Parser.SyntaxNode;

export interface BicepFile {
  absolutePath: string;
  /** Relative to the checked root, `/`-separated: how problems name the file. */
  relativePath: string;
  source: string;
  root: SyntaxNode;
}

let parserPromise: Promise<Parser> | undefined;

async function createParser(): Promise<Parser> {
  await Parser.init();
  const language = await Parser.Language.load(require.resolve('tree-sitter-bicep/tree-sitter-bicep.wasm'));
  const parser = new Parser();
  parser.setLanguage(language);
  return parser;
}

export function bicepParser(): Promise<Parser> {
  parserPromise ??= createParser();
  return parserPromise;
}

export function toRelative(root: string, absolutePath: string): string {
  return path.relative(root, absolutePath).split(path.sep).join('/');
}

/** Every `.bicep` file under `dir`, sorted, skipping `node_modules`. */
export function findBicepFiles(dir: string): string[] {
  const found: string[] = [];
  const visit = (current: string): void => {
    for (const entry of readdirSync(current, { withFileTypes: true })) {
      const full = path.join(current, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules') visit(full);
      } else if (entry.name.endsWith('.bicep')) {
        found.push(full);
      }
    }
  };
  visit(dir);
  return found.sort();
}

export async function parseBicepFile(root: string, absolutePath: string): Promise<BicepFile> {
  const parser = await bicepParser();
  const source = readFileSync(absolutePath, 'utf8');
  const tree = parser.parse(source);
  return { absolutePath, relativePath: toRelative(root, absolutePath), source, root: tree.rootNode };
}

export function lineOf(node: SyntaxNode): number {
  return node.startPosition.row + 1;
}

/** ERROR and MISSING nodes: what the grammar could not make sense of, one problem each. */
export function syntaxProblems(file: BicepFile): Problem[] {
  const problems: Problem[] = [];
  const visit = (node: SyntaxNode): void => {
    if (node.type === 'ERROR') {
      const text = node.text.split('\n')[0].slice(0, 60);
      problems.push({
        check: 'syntax',
        file: file.relativePath,
        line: lineOf(node),
        message: `syntax error at column ${node.startPosition.column + 1}: unexpected "${text}"`,
      });
      return;
    }
    if (node.isMissing) {
      problems.push({
        check: 'syntax',
        file: file.relativePath,
        line: lineOf(node),
        message: `syntax error at column ${node.startPosition.column + 1}: missing "${node.type}"`,
      });
      return;
    }
    if (node.hasError) for (const child of node.children) visit(child);
  };
  visit(file.root);
  return problems;
}
