/**
 * A small semantic layer over the tree-sitter Bicep tree: the declarations of one file, object property
 * lookup, and a static evaluator for the literal parts of expressions (strings, numbers, objects, arrays,
 * `var`s and `param` defaults, a few pure functions). Whatever depends on deployment-time values evaluates
 * to UNKNOWN; callers decide whether that is a problem.
 */
import { BicepFile, SyntaxNode, lineOf } from './bicepParser';

export const UNKNOWN = Symbol('unknown');
export type BicepValue = string | number | boolean | null | BicepValue[] | { [key: string]: BicepValue };
export type Evaluated = BicepValue | typeof UNKNOWN;

export type DeclarationKind = 'param' | 'var' | 'resource' | 'module' | 'output';

export interface Declaration {
  kind: DeclarationKind;
  name: string;
  node: SyntaxNode;
  /** Decorator function names (`secure`, `description`, ...). */
  decorators: string[];
  /** The param default, var value, output value; for resources and modules the body. */
  value?: SyntaxNode;
  /** Resources: `Type@apiVersion` as written; modules: the module path. */
  reference?: string;
  referenceNode?: SyntaxNode;
  /** Resources declared `existing`. */
  existing: boolean;
  line: number;
}

export interface BicepModel {
  file: BicepFile;
  declarations: Declaration[];
  byName: Map<string, Declaration>;
}

const DECLARATION_KINDS: Record<string, DeclarationKind> = {
  parameter_declaration: 'param',
  variable_declaration: 'var',
  resource_declaration: 'resource',
  module_declaration: 'module',
  output_declaration: 'output',
};

function decoratorNames(node: SyntaxNode): string[] {
  let previous = node.previousNamedSibling;
  while (previous && previous.type === 'comment') previous = previous.previousNamedSibling;
  if (!previous || previous.type !== 'decorators') return [];
  return previous.namedChildren
    .filter((decorator) => decorator.type === 'decorator')
    .map((decorator) => decorator.namedChildren[0]?.childForFieldName('function')?.text ?? '');
}

function declarationOf(node: SyntaxNode): Declaration | undefined {
  const kind = DECLARATION_KINDS[node.type];
  if (!kind) return undefined;
  const named = node.namedChildren.filter((child) => child.type !== 'comment');
  const name = named[0]?.text ?? '';
  const declaration: Declaration = {
    kind,
    name,
    node,
    decorators: decoratorNames(node),
    existing: false,
    line: lineOf(node),
  };
  if (kind === 'resource' || kind === 'module') {
    const reference = named[1];
    declaration.referenceNode = reference;
    declaration.reference = reference ? stringLiteralText(reference) : undefined;
    declaration.existing = node.children.some((child) => child.type === 'existing');
    declaration.value = named[named.length - 1];
  } else if (kind === 'param') {
    declaration.value = named.length > 2 ? named[named.length - 1] : undefined;
  } else {
    declaration.value = named[named.length - 1];
  }
  return declaration;
}

export function buildModel(file: BicepFile): BicepModel {
  const declarations = file.root.namedChildren
    .map(declarationOf)
    .filter((declaration): declaration is Declaration => declaration !== undefined);
  // Outputs have their own namespace: an output may share a name with the var it returns.
  const symbols = declarations.filter((d) => d.kind !== 'output');
  return { file, declarations, byName: new Map(symbols.map((d) => [d.name, d])) };
}

/** Every resource declaration in the file, nested child resources included. */
export function allResourceNodes(file: BicepFile): SyntaxNode[] {
  return file.root.descendantsOfType('resource_declaration');
}

/** The object a resource/module body stands for: `= {...}`, `= if (...) {...}`, `= [for ...: {...}]`. */
export function bodyObject(body: SyntaxNode | undefined): SyntaxNode | undefined {
  if (!body) return undefined;
  if (body.type === 'object') return body;
  if (body.type === 'if_statement') return body.namedChildren.find((child) => child.type === 'object');
  if (body.type === 'for_statement') return bodyObject(body.childForFieldName('body') ?? undefined);
  return undefined;
}

function unescapeBicep(text: string): string {
  return text.replace(/\\(.)/g, (_, c: string) => ({ n: '\n', r: '\r', t: '\t' })[c as 'n' | 'r' | 't'] ?? c);
}

/** The text of a string without interpolations; undefined when it has any. */
export function stringLiteralText(node: SyntaxNode): string | undefined {
  if (node.type !== 'string') return undefined;
  let text = '';
  for (const part of node.namedChildren) {
    if (part.type === 'interpolation') return undefined;
    if (part.type === 'comment') continue;
    text += part.type === 'escape_sequence' ? unescapeBicep(part.text) : part.text;
  }
  return text;
}

/** The key of an object property as written (identifier or plain string); undefined for computed keys. */
export function propertyKey(property: SyntaxNode): string | undefined {
  const key = property.namedChildren[0];
  if (!key) return undefined;
  if (key.type === 'string') return stringLiteralText(key);
  if (key.type === 'compatible_identifier') return key.text.replace(/\?$/, '');
  return key.text;
}

export function propertyValue(property: SyntaxNode): SyntaxNode | undefined {
  const named = property.namedChildren.filter((child) => child.type !== 'comment');
  return named.length > 1 ? named[named.length - 1] : undefined;
}

export function objectProperties(object: SyntaxNode): SyntaxNode[] {
  return object.namedChildren.filter((child) => child.type === 'object_property');
}

export function getProperty(object: SyntaxNode | undefined, key: string): SyntaxNode | undefined {
  if (!object || object.type !== 'object') return undefined;
  const property = objectProperties(object).find((candidate) => propertyKey(candidate) === key);
  return property ? propertyValue(property) : undefined;
}

export function getPath(object: SyntaxNode | undefined, keys: readonly string[]): SyntaxNode | undefined {
  let current = object;
  for (const key of keys) current = getProperty(current, key);
  return current;
}

export function arrayItems(array: SyntaxNode | undefined): SyntaxNode[] {
  if (!array || array.type !== 'array') return [];
  return array.namedChildren.filter((child) => child.type !== 'comment' && child.type !== 'decorators');
}

/** Resource type without the API version: `Microsoft.Web/sites`. */
export function resourceType(declaration: Declaration): string | undefined {
  return declaration.reference?.split('@')[0];
}

export function resourcesOfType(model: BicepModel, type: string): Declaration[] {
  return model.declarations.filter(
    (d) => d.kind === 'resource' && resourceType(d)?.toLowerCase() === type.toLowerCase(),
  );
}

function isValue(value: Evaluated): value is BicepValue {
  return value !== UNKNOWN;
}

function isRecord(value: Evaluated): value is { [key: string]: BicepValue } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stringify(value: BicepValue): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

const PURE_FUNCTIONS: Record<string, (args: BicepValue[]) => Evaluated> = {
  string: ([value]) => stringify(value),
  toLower: ([value]) => (typeof value === 'string' ? value.toLowerCase() : UNKNOWN),
  toUpper: ([value]) => (typeof value === 'string' ? value.toUpperCase() : UNKNOWN),
  min: (values) => (values.every((v) => typeof v === 'number') ? Math.min(...(values as number[])) : UNKNOWN),
  max: (values) => (values.every((v) => typeof v === 'number') ? Math.max(...(values as number[])) : UNKNOWN),
  union: (values) =>
    values.every((v) => typeof v === 'object' && v !== null && !Array.isArray(v))
      ? Object.assign({}, ...(values as object[]))
      : UNKNOWN,
};

/** Evaluates what can be known before deployment; `UNKNOWN` for the rest. */
export function evaluate(node: SyntaxNode | undefined, model: BicepModel, seen: Set<string> = new Set()): Evaluated {
  if (!node) return UNKNOWN;
  switch (node.type) {
    case 'string': {
      let text = '';
      for (const part of node.namedChildren) {
        if (part.type === 'comment') continue;
        if (part.type === 'interpolation') {
          const inner = evaluate(part.namedChildren[0], model, seen);
          if (!isValue(inner)) return UNKNOWN;
          text += stringify(inner);
        } else {
          text += part.type === 'escape_sequence' ? unescapeBicep(part.text) : part.text;
        }
      }
      return text;
    }
    case 'number':
      return Number(node.text);
    case 'boolean':
      return node.text === 'true';
    case 'null':
      return null;
    case 'parenthesized_expression':
      return node.namedChildren.length === 1 ? evaluate(node.namedChildren[0], model, seen) : UNKNOWN;
    case 'unary_expression': {
      const argument = evaluate(node.childForFieldName('argument') ?? undefined, model, seen);
      const operator = node.childForFieldName('operator')?.text;
      if (operator === '-' && typeof argument === 'number') return -argument;
      if (operator === '!' && typeof argument === 'boolean') return !argument;
      return UNKNOWN;
    }
    case 'binary_expression': {
      const left = evaluate(node.childForFieldName('left') ?? undefined, model, seen);
      const right = evaluate(node.childForFieldName('right') ?? undefined, model, seen);
      const operator = node.childForFieldName('operator')?.text;
      if (typeof left === 'number' && typeof right === 'number') {
        if (operator === '+') return left + right;
        if (operator === '-') return left - right;
        if (operator === '*') return left * right;
        if (operator === '/') return Math.trunc(left / right);
      }
      return UNKNOWN;
    }
    case 'object': {
      const result: { [key: string]: BicepValue } = {};
      for (const property of objectProperties(node)) {
        const key = propertyKey(property);
        const value = evaluate(propertyValue(property), model, seen);
        if (key === undefined || !isValue(value)) return UNKNOWN;
        result[key] = value;
      }
      return result;
    }
    case 'array': {
      const result: BicepValue[] = [];
      for (const item of arrayItems(node)) {
        const value = evaluate(item, model, seen);
        if (!isValue(value)) return UNKNOWN;
        result.push(value);
      }
      return result;
    }
    case 'identifier': {
      const declaration = model.byName.get(node.text);
      if (!declaration || (declaration.kind !== 'var' && declaration.kind !== 'param') || seen.has(node.text)) {
        return UNKNOWN;
      }
      return evaluate(declaration.value, model, new Set([...seen, node.text]));
    }
    case 'member_expression': {
      const object = evaluate(node.childForFieldName('object') ?? undefined, model, seen);
      const property = node.childForFieldName('property')?.text;
      return isRecord(object) && property !== undefined && property in object ? object[property] : UNKNOWN;
    }
    case 'subscript_expression': {
      const object = evaluate(node.childForFieldName('object') ?? undefined, model, seen);
      const index = evaluate(node.childForFieldName('index') ?? undefined, model, seen);
      if (Array.isArray(object) && typeof index === 'number') return object[index] ?? UNKNOWN;
      if (isRecord(object) && typeof index === 'string') return object[index] ?? UNKNOWN;
      return UNKNOWN;
    }
    case 'call_expression': {
      const name = node.childForFieldName('function')?.text ?? '';
      const implementation = PURE_FUNCTIONS[name];
      if (!implementation) return UNKNOWN;
      const args = (node.childForFieldName('arguments')?.namedChildren ?? [])
        .filter((argument) => argument.type !== 'comment')
        .map((argument) => evaluate(argument, model, seen));
      return args.every(isValue) ? implementation(args as BicepValue[]) : UNKNOWN;
    }
    default:
      return UNKNOWN;
  }
}

/** Identifiers an expression refers to (variables, params, resources, modules), in source order. */
export function referencedIdentifiers(node: SyntaxNode): SyntaxNode[] {
  const found: SyntaxNode[] = [];
  const visit = (current: SyntaxNode): void => {
    if (current.type === 'identifier') {
      const parent = current.parent;
      const isPropertyName =
        parent?.type === 'object_property' && parent.namedChildren[0]?.id === current.id && propertyValue(parent);
      if (!isPropertyName) found.push(current);
      return;
    }
    for (const child of current.namedChildren) visit(child);
  };
  visit(node);
  return found;
}
