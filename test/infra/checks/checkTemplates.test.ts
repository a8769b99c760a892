/**
 * The infra checks pass on the real templates, and each kind of check fails, naming the file, the line and
 * the problem, when one error of its kind is planted in a temporary copy of infra/ (and of the code it reads).
 */
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CheckName, Problem, checkTemplates, formatProblem, runCli } from '../../../infra/checks/checkTemplates';

const REPO_ROOT = path.resolve(__dirname, '../../..');
/** What the checks read: the templates and the code they compare against. */
const COPIED_FOLDERS = ['infra', 'shared', 'functions', 'connector'];

let workDir: string;

function copyRepository(): string {
  const root = mkdtempSync(path.join(workDir, 'repo-'));
  for (const folder of COPIED_FOLDERS) {
    const source = path.join(REPO_ROOT, folder);
    if (!existsSync(source)) continue;
    cpSync(source, path.join(root, folder), {
      recursive: true,
      filter: (file) => !file.includes(`${path.sep}node_modules`),
    });
  }
  return root;
}

/** Replaces the one occurrence of `search` in a copied file; fails the test if the text is not there once. */
function plant(root: string, file: string, search: string, replacement: string): void {
  const full = path.join(root, file);
  const text = readFileSync(full, 'utf8');
  const occurrences = text.split(search).length - 1;
  if (occurrences !== 1) throw new Error(`expected "${search}" once in ${file}, found ${occurrences}`);
  writeFileSync(full, text.replace(search, replacement));
}

function append(root: string, file: string, text: string): void {
  const full = path.join(root, file);
  writeFileSync(full, readFileSync(full, 'utf8') + text);
}

/** 1-based line of the first line containing `text` in a copied file. */
function lineOf(root: string, file: string, text: string): number {
  const index = readFileSync(path.join(root, file), 'utf8')
    .split('\n')
    .findIndex((line) => line.includes(text));
  if (index < 0) throw new Error(`"${text}" not in ${file}`);
  return index + 1;
}

function describeAll(problems: Problem[]): string {
  return problems.map(formatProblem).join('\n') || '(no problems)';
}

/** Asserts a problem of `check` in `file` (at `line`, when given) whose message matches, and returns it. */
function expectProblem(
  problems: Problem[],
  expected: { check: CheckName; file: string; line?: number; message: RegExp },
): Problem {
  const found = problems.find(
    (problem) =>
      problem.check === expected.check &&
      problem.file === expected.file &&
      (expected.line === undefined || problem.line === expected.line) &&
      expected.message.test(problem.message),
  );
  if (!found) {
    throw new Error(
      `expected a [${expected.check}] problem in ${expected.file}:${expected.line ?? '*'} matching ${expected.message}; got:\n${describeAll(problems)}`,
    );
  }
  return found;
}

function expectOnly(problems: Problem[], check: CheckName): void {
  const others = problems.filter((problem) => problem.check !== check);
  if (others.length > 0) throw new Error(`only [${check}] problems expected; got:\n${describeAll(problems)}`);
}

beforeAll(() => {
  workDir = mkdtempSync(path.join(tmpdir(), 'infra-checks-'));
});

afterAll(() => {
  rmSync(workDir, { recursive: true, force: true });
});

describe('the real templates', () => {
  it('pass every check', async () => {
    const problems = await checkTemplates(REPO_ROOT);
    expect(describeAll(problems)).toBe('(no problems)');
  }, 60_000); // the first run loads the Bicep grammar and TypeScript's lib files

  it('pass through the CLI, which exits 0', async () => {
    const lines: string[] = [];
    const code = await runCli(
      [REPO_ROOT],
      (line) => lines.push(line),
      (line) => lines.push(line),
    );
    expect(code).toBe(0);
    expect(lines.join('\n')).toMatch(/no problems/);
  });
});

describe('the CLI', () => {
  it('prints one file:line line per problem and exits 1', async () => {
    const root = copyRepository();
    plant(
      root,
      'infra/app/servicebus.bicep',
      "var twinEventsTopicName = 'twin-events'",
      "var twinEventsTopicName = 'events'",
    );
    const out: string[] = [];
    const err: string[] = [];
    const code = await runCli(
      [root],
      (line) => out.push(line),
      (line) => err.push(line),
    );
    expect(code).toBe(1);
    expect(out).toContain(
      `infra/app/servicebus.bicep:${lineOf(root, 'infra/app/servicebus.bicep', 'resource twinEventsTopic ')}: [names] Service Bus topic "events" is not one the code uses (code: "twin-events")`,
    );
    expect(out.every((line) => /^[^:]+:\d+: \[[a-z-]+\] /.test(line))).toBe(true);
    expect(err.join('\n')).toMatch(/2 problem\(s\)/);
  });
});

describe('syntax', () => {
  it('fails on a Bicep syntax error, naming the file and line', async () => {
    const root = copyRepository();
    plant(root, 'infra/app/registry.bicep', 'adminUserEnabled: false', 'adminUserEnabled: = false');
    const problems = await checkTemplates(root);
    expectProblem(problems, {
      check: 'syntax',
      file: 'infra/app/registry.bicep',
      line: lineOf(root, 'infra/app/registry.bicep', 'adminUserEnabled: = false'),
      message: /syntax error at column \d+/,
    });
  });
});

describe('modules', () => {
  it('fails when a module path does not exist', async () => {
    const root = copyRepository();
    plant(root, 'infra/main.bicep', "module cosmos './app/cosmos.bicep'", "module cosmos './app/cosmosdb.bicep'");
    const problems = await checkTemplates(root);
    expectProblem(problems, {
      check: 'modules',
      file: 'infra/main.bicep',
      line: lineOf(root, 'infra/main.bicep', 'module cosmos '),
      message: /module cosmos: "\.\/app\/cosmosdb\.bicep" does not exist/,
    });
    expectOnly(problems, 'modules');
  });

  it('fails when a loaded file does not exist', async () => {
    const root = copyRepository();
    plant(
      root,
      'infra/main.bicep',
      "loadJsonContent('./abbreviations.json')",
      "loadJsonContent('./abbreviation.json')",
    );
    const problems = await checkTemplates(root);
    expectProblem(problems, {
      check: 'modules',
      file: 'infra/main.bicep',
      line: lineOf(root, 'infra/main.bicep', 'loadJsonContent('),
      message: /abbreviation\.json.*does not exist/,
    });
  });
});

describe('app settings', () => {
  it('fails when a setting the Functions app reads is not set', async () => {
    const root = copyRepository();
    plant(root, 'infra/app/functions.bicep', "        { name: 'Staleness__schedule', value: stalenessSchedule }\n", '');
    const problems = await checkTemplates(root);
    expectProblem(problems, {
      check: 'app-settings',
      file: 'shared/config.ts',
      line: lineOf(root, 'shared/config.ts', "'Staleness__schedule'"),
      message: /Staleness__schedule is read by the functionApp but no template sets it/,
    });
    expectOnly(problems, 'app-settings');
  });

  it('fails when a setting the connector reads is not in its container environment', async () => {
    const root = copyRepository();
    plant(root, 'infra/app/connector.bicep', "            { name: 'Connector__apiUrl', value: apiUrl }\n", '');
    const problems = await checkTemplates(root);
    expectProblem(problems, {
      check: 'app-settings',
      file: 'shared/config.ts',
      message:
        /Connector__apiUrl is read by the connector but no template sets it on the connector container environment/,
    });
    expectOnly(problems, 'app-settings');
  });

  it('follows new settings in the code: a config function the Functions app imports', async () => {
    const root = copyRepository();
    append(
      root,
      'shared/config.ts',
      "\nexport function loadPlantedConfig(env: Env = process.env): string | undefined {\n  return env['Planted__setting'];\n}\n",
    );
    writeFileSync(
      path.join(root, 'functions/plantedFunction.ts'),
      "import { loadPlantedConfig } from '../shared/config';\nexport const planted = loadPlantedConfig();\n",
    );
    const problems = await checkTemplates(root);
    expectProblem(problems, {
      check: 'app-settings',
      file: 'shared/config.ts',
      line: lineOf(root, 'shared/config.ts', "env['Planted__setting']"),
      message: /Planted__setting is read by the functionApp but no template sets it/,
    });
    expectOnly(problems, 'app-settings');
  });

  it('fails on a settings read that no app reaches', async () => {
    const root = copyRepository();
    append(
      root,
      'shared/config.ts',
      "\nexport function loadOrphanConfig(env: Env = process.env): string | undefined {\n  return env['Orphan__setting'];\n}\n",
    );
    const problems = await checkTemplates(root);
    expectProblem(problems, {
      check: 'app-settings',
      file: 'shared/config.ts',
      line: lineOf(root, 'shared/config.ts', "env['Orphan__setting']"),
      message: /Orphan__setting read in loadOrphanConfig, which no app reaches/,
    });
  });

  it('fails on a binding expression in functions/ whose setting is not set', async () => {
    const root = copyRepository();
    writeFileSync(
      path.join(root, 'functions/plantedTimer.ts'),
      "export const plantedSchedule = '%Planted__schedule%';\n",
    );
    const problems = await checkTemplates(root);
    expectProblem(problems, {
      check: 'app-settings',
      file: 'functions/plantedTimer.ts',
      line: 1,
      message: /Planted__schedule is read by the functionApp/,
    });
  });

  it('fails when a template sets a setting nothing reads', async () => {
    const root = copyRepository();
    plant(
      root,
      'infra/app/functions.bicep',
      "        { name: 'Staleness__schedule', value: stalenessSchedule }\n",
      "        { name: 'Staleness__schedule', value: stalenessSchedule }\n        { name: 'Unread__setting', value: 'x' }\n",
    );
    const problems = await checkTemplates(root);
    expectProblem(problems, {
      check: 'app-settings',
      file: 'infra/app/functions.bicep',
      line: lineOf(root, 'infra/app/functions.bicep', 'Unread__setting'),
      message: /Unread__setting is set on the Functions app settings .* but the code never reads it/,
    });
    expectOnly(problems, 'app-settings');
  });

  it('fails when a template sets a local-only key setting', async () => {
    const root = copyRepository();
    plant(
      root,
      'infra/app/connector.bicep',
      "            { name: 'Connector__apiUrl', value: apiUrl }\n",
      "            { name: 'Connector__apiUrl', value: apiUrl }\n            { name: 'CosmosDb__accountKey', value: 'emulator' }\n",
    );
    const problems = await checkTemplates(root);
    expectProblem(problems, {
      check: 'app-settings',
      file: 'infra/app/connector.bicep',
      line: lineOf(root, 'infra/app/connector.bicep', 'CosmosDb__accountKey'),
      message: /CosmosDb__accountKey is a local-only setting/,
    });
  });
});

describe('names', () => {
  it('fails when the queue name differs from the code constant', async () => {
    const root = copyRepository();
    plant(root, 'infra/app/servicebus.bicep', "var jobsQueueName = 'device-jobs'", "var jobsQueueName = 'device-job'");
    const problems = await checkTemplates(root);
    expectProblem(problems, {
      check: 'names',
      file: 'infra/app/servicebus.bicep',
      line: lineOf(root, 'infra/app/servicebus.bicep', 'resource jobsQueue '),
      message: /Service Bus queue "device-job" is not one the code uses/,
    });
    expectProblem(problems, {
      check: 'names',
      file: 'shared/constants.ts',
      line: lineOf(root, 'shared/constants.ts', 'export const JOBS_QUEUE'),
      message: /Service Bus queue "device-jobs" \(JOBS_QUEUE\) is not declared by any template/,
    });
    expectOnly(problems, 'names');
  });

  it('fails when the code renames the topic', async () => {
    const root = copyRepository();
    plant(root, 'shared/constants.ts', "'twin-events'", "'device-twin-events'");
    const problems = await checkTemplates(root);
    expectProblem(problems, {
      check: 'names',
      file: 'shared/constants.ts',
      message: /Service Bus topic "device-twin-events" \(EVENTS_TOPIC\) is not declared by any template/,
    });
  });

  it('fails when a container name differs', async () => {
    const root = copyRepository();
    plant(root, 'infra/app/cosmos.bicep', "var twinsContainerName = 'twins'", "var twinsContainerName = 'twin'");
    const problems = await checkTemplates(root);
    expectProblem(problems, {
      check: 'names',
      file: 'infra/app/cosmos.bicep',
      line: lineOf(root, 'infra/app/cosmos.bicep', 'resource twins '),
      message: /Cosmos container "twin" is not one the code uses/,
    });
  });

  it('fails when the partition key differs', async () => {
    const root = copyRepository();
    plant(root, 'infra/app/cosmos.bicep', "var partitionKeyPath = '/deviceId'", "var partitionKeyPath = '/id'");
    const problems = await checkTemplates(root);
    expectProblem(problems, {
      check: 'names',
      file: 'infra/app/cosmos.bicep',
      line: lineOf(root, 'infra/app/cosmos.bicep', 'resource twins '),
      message: /container twins: partition key \["\/id"\] differs from PARTITION_KEY_PATH "\/deviceId"/,
    });
  });

  it('fails when the twins indexing policy differs from the one the code creates', async () => {
    const root = copyRepository();
    plant(root, 'infra/app/cosmos.bicep', "    { path: '/nextStaleAt/?' }\n", '');
    const problems = await checkTemplates(root);
    expectProblem(problems, {
      check: 'names',
      file: 'infra/app/cosmos.bicep',
      line: lineOf(root, 'infra/app/cosmos.bicep', 'indexingPolicy: twinsIndexingPolicy'),
      message:
        /container twins: indexingPolicy differs from TWINS_INDEXING_POLICY \(shared\/cosmosTwinStore\.ts:\d+\): includedPaths lacks \/nextStaleAt\/\?/,
    });
    expectOnly(problems, 'names');
  });

  it('fails when the jobs TTL differs from JOBS_TTL_SECONDS', async () => {
    const root = copyRepository();
    plant(root, 'infra/app/cosmos.bicep', 'var jobsTimeToLiveSeconds = 604800', 'var jobsTimeToLiveSeconds = 86400');
    const problems = await checkTemplates(root);
    expectProblem(problems, {
      check: 'names',
      file: 'infra/app/cosmos.bicep',
      line: lineOf(root, 'infra/app/cosmos.bicep', 'defaultTtl: jobsTimeToLiveSeconds'),
      message: /container jobs: defaultTtl is 86400, the code keeps items 604800 s \(JOBS_TTL_SECONDS\)/,
    });
  });

  it('fails when the jobs queue loses its sessions', async () => {
    const root = copyRepository();
    plant(root, 'infra/app/servicebus.bicep', 'requiresSession: true', 'requiresSession: false');
    const problems = await checkTemplates(root);
    expectProblem(problems, {
      check: 'names',
      file: 'infra/app/servicebus.bicep',
      message: /queue device-jobs: requiresSession must be true/,
    });
  });
});

describe('secrets', () => {
  it('fails on an output that carries listKeys()', async () => {
    const root = copyRepository();
    append(root, 'infra/app/storage.bicep', 'output firstKey string = storageAccount.listKeys().keys[0].value\n');
    const problems = await checkTemplates(root);
    expectProblem(problems, {
      check: 'secrets',
      file: 'infra/app/storage.bicep',
      line: lineOf(root, 'infra/app/storage.bicep', 'output firstKey'),
      message: /output firstKey carries the secret "storageAccount\.listKeys\(\)"/,
    });
    expectOnly(problems, 'secrets');
  });

  it('fails on a @secure() param put in a plain environment variable', async () => {
    const root = copyRepository();
    plant(root, 'infra/app/connector.bicep', 'secureValue: apiKey', 'value: apiKey');
    const problems = await checkTemplates(root);
    expectProblem(problems, {
      check: 'secrets',
      file: 'infra/app/connector.bicep',
      line: lineOf(root, 'infra/app/connector.bicep', 'value: apiKey'),
      message:
        /resource containerGroup puts the secret "apiKey" in properties\.containers\.properties\.environmentVariables\.value/,
    });
    expectOnly(problems, 'secrets');
  });

  it('fails when a secret goes to a module parameter that is not @secure()', async () => {
    const root = copyRepository();
    plant(
      root,
      'infra/app/connector.bicep',
      "@secure()\n@description('The internal API key",
      "@description('The internal API key",
    );
    const problems = await checkTemplates(root);
    expectProblem(problems, {
      check: 'secrets',
      file: 'infra/main.bicep',
      line: lineOf(root, 'infra/main.bicep', 'apiKey: connectorApiKey'),
      message:
        /module connector gets the secret "connectorApiKey" in params\.apiKey, which is not a @secure\(\) parameter/,
    });
    expectOnly(problems, 'secrets');
  });

  it('fails on an output named like a key', async () => {
    const root = copyRepository();
    append(root, 'infra/app/cosmos.bicep', 'output cosmosPrimaryKey string = account.name\n');
    const problems = await checkTemplates(root);
    expectProblem(problems, {
      check: 'secrets',
      file: 'infra/app/cosmos.bicep',
      line: lineOf(root, 'infra/app/cosmos.bicep', 'output cosmosPrimaryKey'),
      message: /output cosmosPrimaryKey: outputs must not hold keys/,
    });
  });
});

describe('api versions', () => {
  it('fails on a resource without an API version', async () => {
    const root = copyRepository();
    plant(
      root,
      'infra/app/registry.bicep',
      "'Microsoft.ContainerRegistry/registries@2023-07-01'",
      "'Microsoft.ContainerRegistry/registries'",
    );
    const problems = await checkTemplates(root);
    expectProblem(problems, {
      check: 'api-version',
      file: 'infra/app/registry.bicep',
      line: lineOf(root, 'infra/app/registry.bicep', 'resource registry '),
      message: /resource registry 'Microsoft\.ContainerRegistry\/registries' does not declare an API version/,
    });
  });
});

describe('identity only', () => {
  it('fails when Service Bus local auth is on', async () => {
    const root = copyRepository();
    plant(root, 'infra/app/servicebus.bicep', 'disableLocalAuth: true', 'disableLocalAuth: false');
    const problems = await checkTemplates(root);
    expectProblem(problems, {
      check: 'identity-only',
      file: 'infra/app/servicebus.bicep',
      line: lineOf(root, 'infra/app/servicebus.bicep', 'resource namespace '),
      message: /resource namespace: properties\.disableLocalAuth must be true \(Service Bus SAS keys must be off\)/,
    });
    expectOnly(problems, 'identity-only');
  });
});

describe('role assignments', () => {
  it('fails on a role assignment without its comment or guid(scope, principal, role) name', async () => {
    const root = copyRepository();
    const rbac = 'infra/app/rbac.bicep';
    const comment = lineOf(root, rbac, '// AcrPull: ');
    const text = readFileSync(path.join(root, rbac), 'utf8').split('\n');
    plant(root, rbac, `${text[comment - 1]}\n`, '');
    plant(
      root,
      rbac,
      'name: guid(registry.id, connectorPrincipalId, roles.acrPull)',
      'name: guid(registry.id, roles.acrPull)',
    );
    const problems = await checkTemplates(root);
    expectProblem(problems, {
      check: 'rbac',
      file: rbac,
      line: lineOf(root, rbac, 'resource connectorAcrPull '),
      message: /connectorAcrPull: add a comment right above it naming the role/,
    });
    expectProblem(problems, {
      check: 'rbac',
      file: rbac,
      line: lineOf(root, rbac, 'name: guid(registry.id, roles.acrPull)'),
      message: /connectorAcrPull: name must be guid\(scope, principal, role\)/,
    });
    expectOnly(problems, 'rbac');
  });
});
