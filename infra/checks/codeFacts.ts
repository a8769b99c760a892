/**
 * What the templates must agree with, read from the code itself (TypeScript compiler API, no hand-kept
 * lists): the app settings each app reads, the names in shared/constants.ts, and the indexing policies
 * the code creates its containers with.
 *
 * App settings: every call in shared/config.ts that passes the `Env` (for example `required(env, 'X')`,
 * `integer(env, \`Observe__${propertyClass}__pmin\`, ...)`), every `env[...]` / `process.env.X` there,
 * resolved to concrete names through literal types and constants; then attributed to the Functions app or
 * the connector by which entry point reaches the reading function: the app's loader (APP_CONFIG_LOADERS) and
 * every config function the app's own folder (functions/, connector/) imports. Binding expressions
 * (`'%Name%'`) and `process.env.X` reads in those folders count for their app too.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { Problem } from './problem';

export type AppName = 'functionApp' | 'connector';

/** The config loader that is each app's entry point into shared/config.ts. */
export const APP_CONFIG_LOADERS: Readonly<Record<AppName, string>> = {
  functionApp: 'loadFunctionsConfig',
  connector: 'loadConnectorConfig',
};

/** Folders whose own settings reads (binding expressions, process.env) belong to one app. */
const APP_SOURCE_FOLDERS: Readonly<Record<AppName, string>> = { functionApp: 'functions', connector: 'connector' };

export const CONFIG_FILE = 'shared/config.ts';
export const CONSTANTS_FILE = 'shared/constants.ts';

export interface SettingRead {
  name: string;
  apps: Set<AppName>;
  /** Where the code reads it (first site). */
  file: string;
  line: number;
}

export interface CodeConstant {
  value: unknown;
  file: string;
  line: number;
}

export interface CodeFacts {
  settings: Map<string, SettingRead>;
  constants: Map<string, CodeConstant>;
  /** `<X>_INDEXING_POLICY` exports anywhere in shared/ or connector/, by constant name. */
  indexingPolicies: Map<string, CodeConstant>;
  problems: Problem[];
}

export const NOT_STATIC = Symbol('not static');

function relative(root: string, file: string): string {
  return path.relative(root, file).split(path.sep).join('/');
}

function lineOf(node: ts.Node): number {
  const sourceFile = node.getSourceFile();
  return sourceFile.getLineAndCharacterOfPosition(node.getStart(sourceFile)).line + 1;
}

function tsFilesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules') found.push(...tsFilesUnder(full));
    } else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) {
      found.push(full);
    }
  }
  return found.sort();
}

class StaticEvaluator {
  constructor(private readonly checker: ts.TypeChecker) {}

  private declarationOf(node: ts.Node): ts.Declaration | undefined {
    let symbol = this.checker.getSymbolAtLocation(node);
    if (symbol && symbol.flags & ts.SymbolFlags.Alias) symbol = this.checker.getAliasedSymbol(symbol);
    return symbol?.declarations?.[0];
  }

  /** A JSON-like value for literal expressions, following `const`s across modules; NOT_STATIC otherwise. */
  value(node: ts.Expression, seen: Set<ts.Node> = new Set()): unknown {
    if (ts.isParenthesizedExpression(node) || ts.isAsExpression(node) || ts.isSatisfiesExpression(node)) {
      return this.value(node.expression, seen);
    }
    if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) return node.text;
    if (ts.isNumericLiteral(node)) return Number(node.text.replace(/_/g, ''));
    if (node.kind === ts.SyntaxKind.TrueKeyword) return true;
    if (node.kind === ts.SyntaxKind.FalseKeyword) return false;
    if (node.kind === ts.SyntaxKind.NullKeyword) return null;
    if (ts.isPrefixUnaryExpression(node) && node.operator === ts.SyntaxKind.MinusToken) {
      const operand = this.value(node.operand, seen);
      return typeof operand === 'number' ? -operand : NOT_STATIC;
    }
    if (ts.isBinaryExpression(node)) {
      const left = this.value(node.left, seen);
      const right = this.value(node.right, seen);
      if (typeof left === 'number' && typeof right === 'number') {
        switch (node.operatorToken.kind) {
          case ts.SyntaxKind.PlusToken:
            return left + right;
          case ts.SyntaxKind.MinusToken:
            return left - right;
          case ts.SyntaxKind.AsteriskToken:
            return left * right;
          case ts.SyntaxKind.SlashToken:
            return left / right;
        }
      }
      if (
        node.operatorToken.kind === ts.SyntaxKind.PlusToken &&
        typeof left === 'string' &&
        typeof right === 'string'
      ) {
        return left + right;
      }
      return NOT_STATIC;
    }
    if (ts.isTemplateExpression(node)) {
      let text = node.head.text;
      for (const span of node.templateSpans) {
        const part = this.value(span.expression, seen);
        if (typeof part !== 'string' && typeof part !== 'number') return NOT_STATIC;
        text += String(part) + span.literal.text;
      }
      return text;
    }
    if (ts.isArrayLiteralExpression(node)) {
      const items = node.elements.map((element) => this.value(element, seen));
      return items.includes(NOT_STATIC) ? NOT_STATIC : items;
    }
    if (ts.isObjectLiteralExpression(node)) {
      const result: Record<string, unknown> = {};
      for (const property of node.properties) {
        if (!ts.isPropertyAssignment(property)) return NOT_STATIC;
        const key =
          ts.isIdentifier(property.name) || ts.isStringLiteral(property.name) ? property.name.text : undefined;
        const value = this.value(property.initializer, seen);
        if (key === undefined || value === NOT_STATIC) return NOT_STATIC;
        result[key] = value;
      }
      return result;
    }
    if (ts.isCallExpression(node) && node.expression.getText() === 'Object.freeze' && node.arguments.length === 1) {
      return this.value(node.arguments[0], seen);
    }
    if (ts.isIdentifier(node) || ts.isPropertyAccessExpression(node)) {
      const declaration = this.declarationOf(ts.isPropertyAccessExpression(node) ? node.name : node);
      if (
        declaration &&
        ts.isVariableDeclaration(declaration) &&
        declaration.initializer &&
        ts.getCombinedNodeFlags(declaration) & ts.NodeFlags.Const &&
        !seen.has(declaration)
      ) {
        return this.value(declaration.initializer, new Set([...seen, declaration]));
      }
      const typed = this.literalTypeValues(node);
      return typed?.length === 1 ? typed[0] : NOT_STATIC;
    }
    return NOT_STATIC;
  }

  /** The values of a string/number literal type or a union of them (for example a `PropertyClass`). */
  private literalTypeValues(node: ts.Expression): string[] | undefined {
    const type = this.checker.getTypeAtLocation(node);
    const members = type.isUnion() ? type.types : [type];
    const values: string[] = [];
    for (const member of members) {
      if (member.isStringLiteral() || member.isNumberLiteral()) values.push(String(member.value));
      else return undefined;
    }
    return values.length > 0 ? values : undefined;
  }

  /** Every string an expression can be: literals, consts, literal-typed values, template products. */
  strings(node: ts.Expression): string[] | undefined {
    if (ts.isParenthesizedExpression(node) || ts.isAsExpression(node)) return this.strings(node.expression);
    if (ts.isTemplateExpression(node)) {
      let results = [node.head.text];
      for (const span of node.templateSpans) {
        const parts = this.strings(span.expression);
        if (!parts) return undefined;
        results = results.flatMap((prefix) => parts.map((part) => prefix + part + span.literal.text));
      }
      return results;
    }
    const value = this.value(node);
    if (typeof value === 'string' || typeof value === 'number') return [String(value)];
    return this.literalTypeValues(node);
  }
}

function isEnvExpression(node: ts.Expression, checker: ts.TypeChecker): boolean {
  if (ts.isPropertyAccessExpression(node)) return node.getText() === 'process.env';
  if (!ts.isIdentifier(node)) return false;
  if (node.text === 'env') return true;
  const symbol = checker.getSymbolAtLocation(node);
  return (symbol?.declarations ?? []).some(
    (declaration) =>
      (ts.isParameter(declaration) || ts.isVariableDeclaration(declaration)) && declaration.type?.getText() === 'Env',
  );
}

function enclosingParameterNames(node: ts.Node): Set<string> {
  const names = new Set<string>();
  for (let current: ts.Node | undefined = node; current; current = current.parent) {
    if (ts.isFunctionLike(current)) {
      for (const parameter of current.parameters) if (ts.isIdentifier(parameter.name)) names.add(parameter.name.text);
    }
  }
  return names;
}

interface ConfigFunction {
  reads: { names: string[]; line: number }[];
  calls: Set<string>;
}

function analyseConfig(
  root: string,
  sourceFile: ts.SourceFile,
  evaluator: StaticEvaluator,
  checker: ts.TypeChecker,
  problems: Problem[],
): Map<string, ConfigFunction> {
  const file = relative(root, sourceFile.fileName);
  const functions = new Map<string, { node: ts.Node; info: ConfigFunction }>();
  for (const statement of sourceFile.statements) {
    if (ts.isFunctionDeclaration(statement) && statement.name) {
      functions.set(statement.name.text, { node: statement, info: { reads: [], calls: new Set() } });
    } else if (ts.isVariableStatement(statement)) {
      for (const declaration of statement.declarationList.declarations) {
        const initializer = declaration.initializer;
        if (ts.isIdentifier(declaration.name) && initializer && ts.isArrowFunction(initializer)) {
          functions.set(declaration.name.text, { node: initializer, info: { reads: [], calls: new Set() } });
        }
      }
    }
  }

  for (const { node, info } of functions.values()) {
    const recordRead = (nameExpression: ts.Expression): void => {
      const names = evaluator.strings(nameExpression);
      if (names) {
        info.reads.push({ names, line: lineOf(nameExpression) });
        return;
      }
      // A helper passing its own `name` parameter through (`required(env, name)`): its callers are the reads.
      if (ts.isIdentifier(nameExpression) && enclosingParameterNames(nameExpression).has(nameExpression.text)) return;
      problems.push({
        check: 'app-settings',
        file,
        line: lineOf(nameExpression),
        message: `cannot tell which app setting "${nameExpression.getText()}" names; use a literal, a constant or a literal-typed value`,
      });
    };
    const visit = (current: ts.Node): void => {
      if (ts.isCallExpression(current)) {
        if (ts.isIdentifier(current.expression) && functions.has(current.expression.text)) {
          info.calls.add(current.expression.text);
        }
        const envIndex = current.arguments.findIndex((argument) => isEnvExpression(argument, checker));
        const nameArgument = envIndex >= 0 ? current.arguments[envIndex + 1] : undefined;
        if (nameArgument) recordRead(nameArgument);
      } else if (ts.isElementAccessExpression(current) && isEnvExpression(current.expression, checker)) {
        recordRead(current.argumentExpression);
      } else if (
        ts.isPropertyAccessExpression(current) &&
        isEnvExpression(current.expression, checker) &&
        !ts.isCallExpression(current.parent)
      ) {
        info.reads.push({ names: [current.name.text], line: lineOf(current) });
      }
      ts.forEachChild(current, visit);
    };
    ts.forEachChild(node, visit);
  }
  return new Map([...functions].map(([name, { info }]) => [name, info]));
}

function reachable(functions: Map<string, ConfigFunction>, start: string): Set<string> {
  const found = new Set<string>();
  const pending = [start];
  while (pending.length > 0) {
    const name = pending.pop() as string;
    if (found.has(name) || !functions.has(name)) continue;
    found.add(name);
    pending.push(...(functions.get(name) as ConfigFunction).calls);
  }
  return found;
}

function addRead(settings: Map<string, SettingRead>, name: string, app: AppName, file: string, line: number): void {
  const existing = settings.get(name);
  if (existing) existing.apps.add(app);
  else settings.set(name, { name, apps: new Set([app]), file, line });
}

/**
 * An app's own folder: its `'%Name%'` binding expressions and `process.env.X` reads (recorded as settings
 * reads), and the shared/config.ts functions it imports (returned: each is an entry point for the app).
 */
function scanAppFolder(root: string, app: AppName, settings: Map<string, SettingRead>): string[] {
  const imported: string[] = [];
  for (const fileName of tsFilesUnder(path.join(root, APP_SOURCE_FOLDERS[app]))) {
    const sourceFile = ts.createSourceFile(fileName, readFileSync(fileName, 'utf8'), ts.ScriptTarget.ES2022, true);
    const file = relative(root, fileName);
    const visit = (node: ts.Node): void => {
      if (
        ts.isImportDeclaration(node) &&
        ts.isStringLiteral(node.moduleSpecifier) &&
        /(^|\/)shared\/config$/.test(node.moduleSpecifier.text) &&
        node.importClause?.namedBindings &&
        ts.isNamedImports(node.importClause.namedBindings)
      ) {
        for (const element of node.importClause.namedBindings.elements) {
          imported.push((element.propertyName ?? element.name).text);
        }
      } else if (ts.isStringLiteralLike(node)) {
        const binding = /^%([A-Za-z_][A-Za-z0-9_]*)%$/.exec(node.text);
        if (binding) addRead(settings, binding[1], app, file, lineOf(node));
      } else if (ts.isPropertyAccessExpression(node) && node.expression.getText() === 'process.env') {
        if (!ts.isCallExpression(node.parent)) addRead(settings, node.name.text, app, file, lineOf(node));
      } else if (
        ts.isElementAccessExpression(node) &&
        node.expression.getText() === 'process.env' &&
        ts.isStringLiteralLike(node.argumentExpression)
      ) {
        addRead(settings, node.argumentExpression.text, app, file, lineOf(node));
      }
      ts.forEachChild(node, visit);
    };
    visit(sourceFile);
  }
  return imported;
}

const COMPILER_OPTIONS: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.CommonJS,
  moduleResolution: ts.ModuleResolutionKind.Node10,
  strict: true,
  noEmit: true,
  skipLibCheck: true,
  types: [],
};

/** TypeScript's own lib files parsed once per process (they never change); everything else read fresh. */
const libFiles = new Map<string, ts.SourceFile>();
const LIB_DIR = path.dirname(ts.getDefaultLibFilePath(COMPILER_OPTIONS));

function cachingCompilerHost(): ts.CompilerHost {
  const host = ts.createCompilerHost(COMPILER_OPTIONS);
  const readSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (fileName, languageVersion, onError, shouldCreate) => {
    if (path.dirname(path.resolve(fileName)) !== LIB_DIR) {
      return readSourceFile(fileName, languageVersion, onError, shouldCreate);
    }
    let cached = libFiles.get(fileName);
    if (!cached) {
      cached = readSourceFile(fileName, languageVersion, onError, shouldCreate);
      if (cached) libFiles.set(fileName, cached);
    }
    return cached;
  };
  return host;
}

export function readCodeFacts(root: string): CodeFacts {
  const problems: Problem[] = [];
  const configPath = path.join(root, CONFIG_FILE);
  const constantsPath = path.join(root, CONSTANTS_FILE);
  // Stores live in shared/ (both apps) or connector/ (the connector's own registrations store).
  const policyFiles = ['shared', 'connector']
    .flatMap((folder) => tsFilesUnder(path.join(root, folder)))
    .filter((file) => readFileSync(file, 'utf8').includes('_INDEXING_POLICY'));
  const rootNames = [configPath, constantsPath, ...policyFiles].filter(existsSync);
  const program = ts.createProgram(rootNames, COMPILER_OPTIONS, cachingCompilerHost());
  const checker = program.getTypeChecker();
  const evaluator = new StaticEvaluator(checker);

  const settings = new Map<string, SettingRead>();
  // Reads in the apps' own folders are merged after config.ts, so a problem names the config.ts read first.
  const folderReads = new Map<string, SettingRead>();
  const entryPoints = new Map<AppName, string[]>();
  for (const app of Object.keys(APP_CONFIG_LOADERS) as AppName[]) {
    entryPoints.set(app, [APP_CONFIG_LOADERS[app], ...scanAppFolder(root, app, folderReads)]);
  }
  const configFile = program.getSourceFile(configPath);
  if (!configFile) {
    problems.push({ check: 'app-settings', file: CONFIG_FILE, line: 1, message: 'the config module is missing' });
  } else {
    const functions = analyseConfig(root, configFile, evaluator, checker, problems);
    const reachedBy = new Map<string, Set<AppName>>();
    for (const [app, loader] of Object.entries(APP_CONFIG_LOADERS) as [AppName, string][]) {
      if (!functions.has(loader)) {
        problems.push({
          check: 'app-settings',
          file: CONFIG_FILE,
          line: 1,
          message: `${loader} (the ${app} settings entry point) is not defined; the checks cannot attribute settings`,
        });
        continue;
      }
      for (const entryPoint of entryPoints.get(app) ?? []) {
        for (const name of reachable(functions, entryPoint)) {
          if (!reachedBy.has(name)) reachedBy.set(name, new Set());
          (reachedBy.get(name) as Set<AppName>).add(app);
        }
      }
    }
    for (const [functionName, info] of functions) {
      const apps = reachedBy.get(functionName);
      for (const read of info.reads) {
        if (!apps) {
          problems.push({
            check: 'app-settings',
            file: CONFIG_FILE,
            line: read.line,
            message: `${read.names.join(', ')} read in ${functionName}, which no app reaches (${Object.values(APP_CONFIG_LOADERS).join(', ')} or a config function imported in functions/ or connector/)`,
          });
          continue;
        }
        for (const name of read.names) for (const app of apps) addRead(settings, name, app, CONFIG_FILE, read.line);
      }
    }
  }

  for (const read of folderReads.values()) {
    for (const app of read.apps) addRead(settings, read.name, app, read.file, read.line);
  }

  const constants = new Map<string, CodeConstant>();
  const indexingPolicies = new Map<string, CodeConstant>();
  for (const fileName of rootNames.filter((file) => file !== configPath)) {
    const sourceFile = program.getSourceFile(fileName);
    if (!sourceFile) continue;
    for (const statement of sourceFile.statements) {
      if (!ts.isVariableStatement(statement)) continue;
      if (!statement.modifiers?.some((modifier) => modifier.kind === ts.SyntaxKind.ExportKeyword)) continue;
      for (const declaration of statement.declarationList.declarations) {
        if (!ts.isIdentifier(declaration.name) || !declaration.initializer) continue;
        const name = declaration.name.text;
        const isPolicy = name.endsWith('_INDEXING_POLICY');
        if (fileName !== constantsPath && !isPolicy) continue;
        const value = evaluator.value(declaration.initializer);
        const entry = { value, file: relative(root, fileName), line: lineOf(declaration) };
        if (value === NOT_STATIC) {
          problems.push({
            check: 'names',
            file: entry.file,
            line: entry.line,
            message: `${name} is not a literal the checks can read`,
          });
          continue;
        }
        (isPolicy ? indexingPolicies : constants).set(name, entry);
      }
    }
  }
  return { settings, constants, indexingPolicies, problems };
}
