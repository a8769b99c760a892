/**
 * ASP.NET-style route templates as Azure Functions HTTP triggers use them: literal segments (case-insensitive),
 * `{name}`, optional `{name?}`, defaults `{name=value}`, catch-all `{*name}`, inline constraints `{name:int}`,
 * `{name:int:min(1)?}`, and complex segments such as `{file}.{ext}`.
 */

type ConstraintCheck = (value: string) => boolean;

interface ParameterPart {
  kind: 'parameter';
  name: string;
  optional: boolean;
  catchAll: boolean;
  defaultValue?: string;
  constraints: ConstraintCheck[];
}

interface LiteralPart {
  kind: 'literal';
  text: string;
}

type SegmentPart = LiteralPart | ParameterPart;

/**
 * Specificity of a segment, lower wins (after ASP.NET's inbound route precedence): a literal beats a complex segment,
 * which beats a constrained parameter, a plain parameter, and finally a catch-all.
 */
const SEGMENT_RANK = { literal: 1, complex: 2, constrained: 3, parameter: 4, catchAll: 5 } as const;

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

export class HttpRouteTemplate {
  private constructor(
    readonly template: string,
    private readonly pattern: RegExp,
    private readonly parameters: ParameterPart[],
    /** One rank per segment; compare with `compareRoutePrecedence`. */
    readonly precedence: number[],
  ) {}

  /** Parses a template; a malformed template or an unknown constraint is an error naming the template. */
  static parse(template: string): HttpRouteTemplate {
    const trimmed = template.replace(/^\/+|\/+$/g, '');
    const segments = trimmed === '' ? [] : trimmed.split('/');
    const parameters: ParameterPart[] = [];
    const precedence: number[] = [];
    let source = '^';
    segments.forEach((segment, index) => {
      const isLast = index === segments.length - 1;
      const parts = parseSegment(segment, template);
      const names = new Set(parameters.map((p) => p.name.toLowerCase()));
      for (const part of parts) {
        if (part.kind === 'parameter') {
          if (names.has(part.name.toLowerCase())) {
            throw new Error(`Route template "${template}" uses parameter "${part.name}" twice.`);
          }
          names.add(part.name.toLowerCase());
          parameters.push(part);
        }
      }
      if (parts.length === 1 && parts[0].kind === 'literal') {
        source += `/${escapeRegExp(parts[0].text)}`;
        precedence.push(SEGMENT_RANK.literal);
        return;
      }
      if (parts.length === 1 && parts[0].kind === 'parameter') {
        const parameter = parts[0];
        if ((parameter.catchAll || parameter.optional) && !isLast) {
          throw new Error(
            `Route template "${template}": "${segment}" must be the last segment (optional and catch-all parameters end a route).`,
          );
        }
        if (parameter.catchAll) {
          source += '(?:/(.*))?';
          precedence.push(SEGMENT_RANK.catchAll);
        } else if (parameter.optional) {
          source += '(?:/([^/]+))?';
          precedence.push(parameter.constraints.length > 0 ? SEGMENT_RANK.constrained : SEGMENT_RANK.parameter);
        } else {
          source += '/([^/]+)';
          precedence.push(parameter.constraints.length > 0 ? SEGMENT_RANK.constrained : SEGMENT_RANK.parameter);
        }
        return;
      }
      source += '/';
      for (const part of parts) {
        if (part.kind === 'literal') {
          source += escapeRegExp(part.text);
        } else if (part.catchAll || part.optional) {
          throw new Error(
            `Route template "${template}": "${segment}" mixes text with an optional or catch-all parameter.`,
          );
        } else {
          source += '([^/]+?)';
        }
      }
      precedence.push(SEGMENT_RANK.complex);
    });
    source += '/?$';
    return new HttpRouteTemplate(template, new RegExp(source, 'i'), parameters, precedence);
  }

  /**
   * Matches a request path relative to the route prefix (`/twins/dev-1`, or `` for the prefix itself). Returns the
   * route parameters (URL-decoded; defaults applied; absent optional ones left out) or undefined.
   */
  match(relativePath: string): Record<string, string> | undefined {
    const match = this.pattern.exec(relativePath);
    if (!match) {
      return undefined;
    }
    const params: Record<string, string> = {};
    for (const [index, parameter] of this.parameters.entries()) {
      const raw = match[index + 1];
      if (raw === undefined || raw === '') {
        if (parameter.defaultValue !== undefined) {
          params[parameter.name] = parameter.defaultValue;
        } else if (!parameter.optional && !parameter.catchAll) {
          return undefined;
        }
        continue;
      }
      const value = decodePathValue(raw);
      if (!parameter.constraints.every((check) => check(value))) {
        return undefined;
      }
      params[parameter.name] = value;
    }
    return params;
  }
}

/** Orders templates most specific first. */
export function compareRoutePrecedence(a: HttpRouteTemplate, b: HttpRouteTemplate): number {
  const length = Math.max(a.precedence.length, b.precedence.length);
  for (let index = 0; index < length; index++) {
    const left = a.precedence[index] ?? 0;
    const right = b.precedence[index] ?? 0;
    if (left !== right) {
      return left - right;
    }
  }
  return 0;
}

function decodePathValue(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

function parseSegment(segment: string, template: string): SegmentPart[] {
  const parts: SegmentPart[] = [];
  let index = 0;
  while (index < segment.length) {
    const open = segment.indexOf('{', index);
    if (open < 0) {
      parts.push({ kind: 'literal', text: segment.slice(index) });
      break;
    }
    if (open > index) {
      parts.push({ kind: 'literal', text: segment.slice(index, open) });
    }
    const close = findClosingBrace(segment, open);
    if (close < 0) {
      throw new Error(`Route template "${template}": "${segment}" has an unclosed "{".`);
    }
    parts.push(parseParameter(segment.slice(open + 1, close), template));
    index = close + 1;
  }
  if (parts.some((part, i) => part.kind === 'parameter' && parts[i + 1]?.kind === 'parameter')) {
    throw new Error(`Route template "${template}": "${segment}" has two parameters with no text between them.`);
  }
  if (parts.some((part) => part.kind === 'literal' && part.text.includes('}'))) {
    throw new Error(`Route template "${template}": "${segment}" has an unmatched "}".`);
  }
  return parts;
}

/** Finds the `}` closing the parameter opened at `open`, skipping parentheses of constraint arguments. */
function findClosingBrace(segment: string, open: number): number {
  let depth = 0;
  for (let index = open + 1; index < segment.length; index++) {
    const char = segment[index];
    if (char === '(') {
      depth++;
    } else if (char === ')') {
      depth = Math.max(0, depth - 1);
    } else if (char === '}' && depth === 0) {
      return index;
    }
  }
  return -1;
}

function parseParameter(body: string, template: string): ParameterPart {
  let text = body.trim();
  let catchAll = false;
  if (text.startsWith('*')) {
    catchAll = true;
    text = text.replace(/^\*{1,2}/, '');
  }
  let defaultValue: string | undefined;
  const pieces = splitOutsideParentheses(text, ':');
  let last = pieces[pieces.length - 1];
  const equals = last.indexOf('=');
  if (equals >= 0 && !last.slice(0, equals).includes('(')) {
    defaultValue = last.slice(equals + 1);
    last = last.slice(0, equals);
  }
  let optional = false;
  if (last.endsWith('?')) {
    optional = true;
    last = last.slice(0, -1);
  }
  pieces[pieces.length - 1] = last;
  const [name, ...constraintTexts] = pieces;
  if (!/^[A-Za-z_][A-Za-z0-9_-]*$/.test(name)) {
    throw new Error(`Route template "${template}": "{${body}}" is not a valid parameter.`);
  }
  if (catchAll && optional) {
    throw new Error(`Route template "${template}": a catch-all parameter "{${body}}" cannot also be optional.`);
  }
  const constraints = constraintTexts.map((constraint) => parseConstraint(constraint, template));
  return {
    kind: 'parameter',
    name,
    optional: optional || defaultValue !== undefined,
    catchAll,
    defaultValue,
    constraints,
  };
}

function splitOutsideParentheses(text: string, separator: string): string[] {
  const pieces: string[] = [];
  let depth = 0;
  let current = '';
  for (const char of text) {
    if (char === '(') {
      depth++;
    } else if (char === ')') {
      depth = Math.max(0, depth - 1);
    }
    if (char === separator && depth === 0) {
      pieces.push(current);
      current = '';
    } else {
      current += char;
    }
  }
  pieces.push(current);
  return pieces;
}

const GUID_PATTERN =
  /^(?:[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\{[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\})$/i;

function isInteger(value: string): boolean {
  return /^-?\d+$/.test(value);
}

function parseConstraint(text: string, template: string): ConstraintCheck {
  const match = /^([a-zA-Z]+)(?:\((.*)\))?$/s.exec(text);
  if (!match) {
    throw new Error(`Route template "${template}": constraint "${text}" is malformed.`);
  }
  const name = match[1].toLowerCase();
  const argument = match[2];
  const numbers = (count: number): number[] => {
    const values = (argument ?? '').split(',').map((part) => Number(part.trim()));
    if (values.length !== count || values.some((value) => !Number.isFinite(value))) {
      throw new Error(`Route template "${template}": constraint "${text}" needs ${count} numeric argument(s).`);
    }
    return values;
  };
  switch (name) {
    case 'int':
      return (value) => isInteger(value) && Number(value) >= INT32_MIN && Number(value) <= INT32_MAX;
    case 'long':
      return isInteger;
    case 'double':
    case 'float':
    case 'decimal':
      return (value) => value.trim() !== '' && Number.isFinite(Number(value));
    case 'bool':
      return (value) => /^(true|false)$/i.test(value);
    case 'guid':
      return (value) => GUID_PATTERN.test(value);
    case 'alpha':
      return (value) => /^[a-z]+$/i.test(value);
    case 'datetime':
      return (value) => !Number.isNaN(Date.parse(value));
    case 'min': {
      const [min] = numbers(1);
      return (value) => isInteger(value) && Number(value) >= min;
    }
    case 'max': {
      const [max] = numbers(1);
      return (value) => isInteger(value) && Number(value) <= max;
    }
    case 'range': {
      const [min, max] = numbers(2);
      return (value) => isInteger(value) && Number(value) >= min && Number(value) <= max;
    }
    case 'minlength': {
      const [min] = numbers(1);
      return (value) => value.length >= min;
    }
    case 'maxlength': {
      const [max] = numbers(1);
      return (value) => value.length <= max;
    }
    case 'length': {
      const bounds = (argument ?? '').includes(',') ? numbers(2) : numbers(1);
      const [min, max] = bounds.length === 2 ? bounds : [bounds[0], bounds[0]];
      return (value) => value.length >= min && value.length <= max;
    }
    case 'regex': {
      let pattern: RegExp;
      try {
        // Route templates escape braces inside a regex constraint by doubling them: `{{3}}` means `{3}`.
        pattern = new RegExp((argument ?? '').replace(/\{\{/g, '{').replace(/\}\}/g, '}'), 'i');
      } catch (error) {
        throw new Error(`Route template "${template}": constraint "${text}": ${(error as Error).message}`);
      }
      return (value) => pattern.test(value);
    }
    default:
      throw new Error(`Route template "${template}": unknown constraint "${name}".`);
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
