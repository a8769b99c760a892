/**
 * Twin queries: parsing the `GET /twins` filters and translating them to parameterised Cosmos SQL.
 * User text only ever reaches Cosmos as a parameter value, never as query text.
 */
import { CATALOG_NAMES, findProperty } from './catalog';
import { TwinError } from './errors';
import { ConnectionState } from './twin';
import { KEY_PATTERN } from './twinPatch';

export type ComparisonOperator = 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge';
export type ScalarValue = string | number | boolean;

export interface PropertyComparison {
  scope: 'deviceProperties' | 'serviceProperties';
  name: string;
  operator: ComparisonOperator;
  value: ScalarValue;
}

export interface TwinQuery {
  /** Every tag must equal its value. */
  tags: { name: string; value: string }[];
  connectionState?: ConnectionState;
  /** true: twins with at least one stale property; false: twins with none. */
  stale?: boolean;
  where: PropertyComparison[];
}

export interface SqlQuery {
  query: string;
  parameters: { name: string; value: ScalarValue }[];
}

const OPERATORS: Record<ComparisonOperator, string> = { eq: '=', ne: '!=', lt: '<', le: '<=', gt: '>', ge: '>=' };
const CONNECTION_STATES: readonly ConnectionState[] = ['never', 'connected', 'disconnected'];
/** Upper bounds that keep one query's cost predictable. */
export const MAX_FILTERS = 20;

/** Parses the query string of `GET /twins`; repeated keys are kept (`tag`, `where`). */
export function parseTwinQuery(params: URLSearchParams): TwinQuery {
  const query: TwinQuery = { tags: [], where: [] };
  const known = new Set(['tag', 'connectionState', 'stale', 'where', 'pageSize', 'continuation']);
  for (const key of params.keys()) {
    if (!known.has(key)) {
      throw new TwinError('InvalidQuery', `Unknown query parameter "${key}"; use ${[...known].join(', ')}`, {
        field: key,
      });
    }
  }
  for (const tag of params.getAll('tag')) {
    const colon = tag.indexOf(':');
    const name = colon < 0 ? '' : tag.slice(0, colon);
    if (!KEY_PATTERN.test(name)) {
      throw new TwinError('InvalidQuery', `tag must be name:value with a name of [A-Za-z0-9_.-]; got "${tag}"`, {
        field: 'tag',
      });
    }
    query.tags.push({ name, value: tag.slice(colon + 1) });
  }
  const state = params.get('connectionState');
  if (state !== null) {
    if (!CONNECTION_STATES.includes(state as ConnectionState)) {
      throw new TwinError('InvalidQuery', `connectionState must be one of ${CONNECTION_STATES.join(', ')}`, {
        field: 'connectionState',
      });
    }
    query.connectionState = state as ConnectionState;
  }
  const stale = params.get('stale');
  if (stale !== null) {
    if (stale !== 'true' && stale !== 'false') {
      throw new TwinError('InvalidQuery', 'stale must be true or false', { field: 'stale' });
    }
    query.stale = stale === 'true';
  }
  for (const where of params.getAll('where')) query.where.push(parseComparison(where));
  if (query.tags.length + query.where.length > MAX_FILTERS) {
    throw new TwinError('InvalidQuery', `At most ${MAX_FILTERS} tag and where filters per query`);
  }
  return query;
}

const COMPARISON = /^(deviceProperties|serviceProperties)\.([^\s]+)\s+(eq|ne|lt|le|gt|ge)\s+(.+)$/;

/** Parses `deviceProperties.batteryLevel lt 20` (values: numbers, true/false, "quoted" or bare strings). */
export function parseComparison(text: string): PropertyComparison {
  const match = COMPARISON.exec(text.trim());
  if (!match) {
    throw new TwinError(
      'InvalidQuery',
      `where must be "<deviceProperties|serviceProperties>.<name> <eq|ne|lt|le|gt|ge> <value>"; got "${text}"`,
      { field: 'where' },
    );
  }
  const [, scope, name, operator, rawValue] = match;
  if (scope === 'deviceProperties') {
    const entry = findProperty(name);
    if (!entry || !entry.readable) {
      throw new TwinError('InvalidQuery', `Unknown device property "${name}"; known: ${CATALOG_NAMES.join(', ')}`, {
        field: 'where',
      });
    }
  } else if (!KEY_PATTERN.test(name)) {
    throw new TwinError('InvalidQuery', `Service property names are [A-Za-z0-9_.-]; got "${name}"`, {
      field: 'where',
    });
  }
  return {
    scope: scope as PropertyComparison['scope'],
    name,
    operator: operator as ComparisonOperator,
    value: parseScalar(rawValue),
  };
}

function parseScalar(raw: string): ScalarValue {
  const text = raw.trim();
  if (text.length >= 2 && text.startsWith('"') && text.endsWith('"')) return text.slice(1, -1);
  if (text === 'true' || text === 'false') return text === 'true';
  if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text);
  return text;
}

/**
 * The SQL for a twin query. Property and tag names are parameters too (`c.tags[@t0]`), so nothing the
 * caller typed becomes query text.
 */
export function toSql(query: TwinQuery): SqlQuery {
  const conditions: string[] = [];
  const parameters: SqlQuery['parameters'] = [];
  const param = (value: ScalarValue): string => {
    const name = `@p${parameters.length}`;
    parameters.push({ name, value });
    return name;
  };
  for (const tag of query.tags) {
    const key = param(tag.name);
    const numeric = Number(tag.value);
    // A tag stored as a number or boolean matches its text form too (`tag=floor:3`).
    const alternatives = [`c.tags[${key}] = ${param(tag.value)}`];
    if (tag.value.trim() !== '' && Number.isFinite(numeric)) alternatives.push(`c.tags[${key}] = ${param(numeric)}`);
    if (tag.value === 'true' || tag.value === 'false') {
      alternatives.push(`c.tags[${key}] = ${param(tag.value === 'true')}`);
    }
    conditions.push(alternatives.length === 1 ? alternatives[0] : `(${alternatives.join(' OR ')})`);
  }
  if (query.connectionState) conditions.push(`c.connection.state = ${param(query.connectionState)}`);
  if (query.stale === true) conditions.push('ARRAY_LENGTH(c.staleProperties) > 0');
  if (query.stale === false)
    conditions.push('(NOT IS_DEFINED(c.staleProperties) OR ARRAY_LENGTH(c.staleProperties) = 0)');
  for (const comparison of query.where) {
    const key = param(comparison.name);
    conditions.push(
      `c.${comparison.scope}[${key}]['value'] ${OPERATORS[comparison.operator]} ${param(comparison.value)}`,
    );
  }
  const where = conditions.length ? ` WHERE ${conditions.join(' AND ')}` : '';
  return { query: `SELECT * FROM c${where}`, parameters };
}
