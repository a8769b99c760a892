/**
 * The names and shapes the code and the templates share, compared with the code's own constants
 * (shared/constants.ts by naming convention) and exported indexing policies:
 * - `*_CONTAINER` = the Cosmos containers, `COSMOS_DATABASE_DEFAULT` = the database,
 *   `PARTITION_KEY_PATH` = every container's partition key, `<X>_TTL_SECONDS` = the `<X>_CONTAINER` TTL,
 *   `<X>_INDEXING_POLICY` (exported anywhere in shared/ or connector/) = the `<X>_CONTAINER` indexing policy;
 * - `*_QUEUE` = the Service Bus queues, `*_TOPIC` = the topics; the jobs queue has sessions
 *   (sessionId = deviceId) and duplicate detection (messageId = jobId), which the job code relies on.
 */
import { lineOf } from './bicepParser';
import {
  BicepModel,
  Declaration,
  Evaluated,
  UNKNOWN,
  bodyObject,
  evaluate,
  getPath,
  getProperty,
  resourcesOfType,
} from './bicepModel';
import { CodeConstant, CodeFacts, CONSTANTS_FILE } from './codeFacts';
import { Problem } from './problem';
import { MAIN_TEMPLATE, TemplateSet } from './templateSet';

const CONTAINER_TYPE = 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers';
const DATABASE_TYPE = 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases';
const QUEUE_TYPE = 'Microsoft.ServiceBus/namespaces/queues';
const TOPIC_TYPE = 'Microsoft.ServiceBus/namespaces/topics';
/** The queue the job code sends with sessionId and messageId (ARCHITECTURE.md, "The job message"). */
const JOBS_QUEUE_CONSTANT = 'JOBS_QUEUE';

interface NamedResource {
  name: string;
  model: BicepModel;
  declaration: Declaration;
  body: ReturnType<typeof bodyObject>;
}

function namedResources(templates: TemplateSet, type: string, problems: Problem[]): NamedResource[] {
  const found: NamedResource[] = [];
  for (const model of templates.models.values()) {
    for (const declaration of resourcesOfType(model, type)) {
      if (declaration.existing) continue;
      const body = bodyObject(declaration.value);
      const name = evaluate(getProperty(body, 'name'), model);
      if (typeof name !== 'string') {
        problems.push({
          check: 'names',
          file: model.file.relativePath,
          line: declaration.line,
          message: `${type} ${declaration.name}: its name is not a literal the checks can compare with the code`,
        });
        continue;
      }
      found.push({ name, model, declaration, body });
    }
  }
  return found;
}

function constantsEndingWith(facts: CodeFacts, suffix: string): Map<string, [string, CodeConstant]> {
  const byValue = new Map<string, [string, CodeConstant]>();
  for (const [name, constant] of facts.constants) {
    if (name.endsWith(suffix) && typeof constant.value === 'string') byValue.set(constant.value, [name, constant]);
  }
  return byValue;
}

function compareSets(
  what: string,
  type: string,
  code: Map<string, [string, CodeConstant]>,
  resources: NamedResource[],
  problems: Problem[],
): void {
  const declared = new Set(resources.map((resource) => resource.name));
  for (const resource of resources) {
    if (!code.has(resource.name)) {
      const known = [...code.keys()].map((name) => `"${name}"`).join(', ') || 'none';
      problems.push({
        check: 'names',
        file: resource.model.file.relativePath,
        line: resource.declaration.line,
        message: `${what} "${resource.name}" is not one the code uses (code: ${known})`,
      });
    }
  }
  for (const [value, [constantName, constant]] of code) {
    if (!declared.has(value)) {
      problems.push({
        check: 'names',
        file: constant.file,
        line: constant.line,
        message: `${what} "${value}" (${constantName}) is not declared by any template (${type})`,
      });
    }
  }
}

/** Keys whose arrays are sets of `{ path }` (order carries no meaning); composite indexes keep their order. */
const PATH_SET_KEYS = new Set(['includedPaths', 'excludedPaths', 'spatialIndexes']);

function normalise(value: unknown, key = ''): unknown {
  if (Array.isArray(value)) {
    const items = value.map((item) => normalise(item));
    const pathOf = (item: unknown): string => String((item as { path?: unknown } | null)?.path);
    return PATH_SET_KEYS.has(key) ? [...items].sort((a, b) => pathOf(a).localeCompare(pathOf(b))) : items;
  }
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, normalise((value as Record<string, unknown>)[k], k)]),
    );
  }
  return value;
}

function paths(policy: unknown, key: string): string[] {
  const list = (policy as Record<string, unknown> | undefined)?.[key];
  return Array.isArray(list) ? list.map((item) => String((item as { path?: unknown }).path)) : [];
}

function describePolicyDifference(code: unknown, template: Evaluated): string {
  const differences: string[] = [];
  for (const key of ['includedPaths', 'excludedPaths']) {
    const inCode = paths(code, key);
    const inTemplate = paths(template, key);
    const missing = inCode.filter((p) => !inTemplate.includes(p));
    const extra = inTemplate.filter((p) => !inCode.includes(p));
    if (missing.length > 0) differences.push(`${key} lacks ${missing.join(', ')}`);
    if (extra.length > 0) differences.push(`${key} has extra ${extra.join(', ')}`);
  }
  const codeRecord = (code ?? {}) as Record<string, unknown>;
  const templateRecord = (template ?? {}) as Record<string, unknown>;
  for (const key of new Set([...Object.keys(codeRecord), ...Object.keys(templateRecord)])) {
    if (key === 'includedPaths' || key === 'excludedPaths') continue;
    if (JSON.stringify(normalise(codeRecord[key], key)) !== JSON.stringify(normalise(templateRecord[key], key))) {
      differences.push(
        `${key} is ${JSON.stringify(templateRecord[key])}, the code has ${JSON.stringify(codeRecord[key])}`,
      );
    }
  }
  return differences.join('; ') || 'the policies differ';
}

function checkContainers(facts: CodeFacts, containers: NamedResource[], problems: Problem[]): void {
  const containerConstants = constantsEndingWith(facts, '_CONTAINER');
  const partitionKey = facts.constants.get('PARTITION_KEY_PATH');
  for (const container of containers) {
    const file = container.model.file.relativePath;
    const line = container.declaration.line;
    const resource = getPath(container.body, ['properties', 'resource']);
    const id = evaluate(getProperty(resource, 'id'), container.model);
    if (id !== container.name) {
      problems.push({
        check: 'names',
        file,
        line,
        message: `container ${container.name}: properties.resource.id is ${JSON.stringify(id === UNKNOWN ? '?' : id)}, not its name`,
      });
    }
    const keyPaths = evaluate(getPath(resource, ['partitionKey', 'paths']), container.model);
    if (partitionKey && JSON.stringify(keyPaths) !== JSON.stringify([partitionKey.value])) {
      problems.push({
        check: 'names',
        file,
        line,
        message: `container ${container.name}: partition key ${JSON.stringify(keyPaths === UNKNOWN ? '?' : keyPaths)} differs from PARTITION_KEY_PATH "${String(partitionKey.value)}" (${CONSTANTS_FILE})`,
      });
    }
    const constantName = containerConstants.get(container.name)?.[0];
    if (!constantName) continue;
    const prefix = constantName.replace(/_CONTAINER$/, '');

    const ttlConstant = facts.constants.get(`${prefix}_TTL_SECONDS`);
    const ttlNode = getProperty(resource, 'defaultTtl');
    const ttl = ttlNode ? evaluate(ttlNode, container.model) : undefined;
    if (ttlConstant && ttl !== ttlConstant.value) {
      problems.push({
        check: 'names',
        file,
        line: ttlNode ? lineOf(ttlNode) : line,
        message: `container ${container.name}: defaultTtl ${ttl === undefined ? 'is not set' : `is ${String(ttl === UNKNOWN ? '?' : ttl)}`}, the code keeps items ${String(ttlConstant.value)} s (${prefix}_TTL_SECONDS)`,
      });
    } else if (!ttlConstant && ttlNode) {
      problems.push({
        check: 'names',
        file,
        line: lineOf(ttlNode),
        message: `container ${container.name}: defaultTtl is set but the code has no ${prefix}_TTL_SECONDS`,
      });
    }

    const policyName = `${prefix}_INDEXING_POLICY`;
    const codePolicy = facts.indexingPolicies.get(policyName);
    const policyNode = getProperty(resource, 'indexingPolicy');
    if (codePolicy && !policyNode) {
      problems.push({
        check: 'names',
        file,
        line,
        message: `container ${container.name}: no indexingPolicy, the code creates it with ${policyName} (${codePolicy.file}:${codePolicy.line})`,
      });
    } else if (!codePolicy && policyNode) {
      problems.push({
        check: 'names',
        file,
        line: lineOf(policyNode),
        message: `container ${container.name}: has an indexingPolicy, the code creates it with the default policy (no ${policyName})`,
      });
    } else if (codePolicy && policyNode) {
      const templatePolicy = evaluate(policyNode, container.model);
      if (JSON.stringify(normalise(templatePolicy)) !== JSON.stringify(normalise(codePolicy.value))) {
        problems.push({
          check: 'names',
          file,
          line: lineOf(policyNode),
          message: `container ${container.name}: indexingPolicy differs from ${policyName} (${codePolicy.file}:${codePolicy.line}): ${describePolicyDifference(codePolicy.value, templatePolicy)}`,
        });
      }
    }
  }
}

function checkJobsQueue(facts: CodeFacts, queues: NamedResource[], problems: Problem[]): void {
  const jobsQueue = facts.constants.get(JOBS_QUEUE_CONSTANT)?.value;
  for (const queue of queues.filter((candidate) => candidate.name === jobsQueue)) {
    const properties = getProperty(queue.body, 'properties');
    for (const [flag, why] of [
      ['requiresSession', 'jobs for one device run in order (sessionId = deviceId)'],
      ['requiresDuplicateDetection', 'job submission is idempotent (messageId = jobId)'],
    ]) {
      if (evaluate(getProperty(properties, flag), queue.model) !== true) {
        problems.push({
          check: 'names',
          file: queue.model.file.relativePath,
          line: queue.declaration.line,
          message: `queue ${queue.name}: ${flag} must be true: ${why}`,
        });
      }
    }
  }
}

export function checkNames(templates: TemplateSet, facts: CodeFacts): Problem[] {
  const problems: Problem[] = [];
  if (facts.constants.size === 0) {
    problems.push({ check: 'names', file: CONSTANTS_FILE, line: 1, message: 'no constants found to compare with' });
    return problems;
  }
  const containers = namedResources(templates, CONTAINER_TYPE, problems);
  const queues = namedResources(templates, QUEUE_TYPE, problems);
  compareSets('Cosmos container', CONTAINER_TYPE, constantsEndingWith(facts, '_CONTAINER'), containers, problems);
  compareSets('Service Bus queue', QUEUE_TYPE, constantsEndingWith(facts, '_QUEUE'), queues, problems);
  compareSets(
    'Service Bus topic',
    TOPIC_TYPE,
    constantsEndingWith(facts, '_TOPIC'),
    namedResources(templates, TOPIC_TYPE, problems),
    problems,
  );
  const database = facts.constants.get('COSMOS_DATABASE_DEFAULT');
  if (database) {
    compareSets(
      'Cosmos database',
      DATABASE_TYPE,
      new Map([[String(database.value), ['COSMOS_DATABASE_DEFAULT', database]]]),
      namedResources(templates, DATABASE_TYPE, problems),
      problems,
    );
  }
  checkContainers(facts, containers, problems);
  checkJobsQueue(facts, queues, problems);
  if (containers.length === 0 && queues.length === 0) {
    problems.push({ check: 'names', file: MAIN_TEMPLATE, line: 1, message: 'no Cosmos containers or queues declared' });
  }
  return problems;
}
