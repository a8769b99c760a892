/**
 * The project's own checks of infra/ (the Bicep CLI is not available in CI): syntax with the real Bicep
 * grammar, module paths, app settings against shared/config.ts, shared names against shared/constants.ts,
 * no secret in outputs or logs, API versions, identity-only services, role assignment conventions.
 *
 * CLI: `node dist/infra/checks/checkTemplates.js [root]` (root defaults to the working directory) prints one
 * `file:line: [check] problem` line per problem and exits 1 when there is any, 0 otherwise.
 */
import path from 'node:path';
import { checkApiVersions } from './apiVersionCheck';
import { checkAppSettings } from './appSettingsCheck';
import { syntaxProblems } from './bicepParser';
import { readCodeFacts } from './codeFacts';
import { checkIdentityOnly } from './identityOnlyCheck';
import { checkModules } from './moduleCheck';
import { checkNames } from './namesCheck';
import { Problem, compareProblems, formatProblem } from './problem';
import { checkRbac } from './rbacCheck';
import { checkSecrets } from './secretsCheck';
import { MAIN_TEMPLATE, loadTemplates } from './templateSet';

export type { CheckName, Problem } from './problem';
export { formatProblem } from './problem';

/** All problems of the templates under `<root>/infra` against the code under `<root>`, sorted by place. */
export async function checkTemplates(root: string): Promise<Problem[]> {
  const templates = await loadTemplates(root);
  if (!templates.models.has(MAIN_TEMPLATE)) {
    return [{ check: 'modules', file: MAIN_TEMPLATE, line: 1, message: 'the main template is missing' }];
  }
  const facts = readCodeFacts(root);
  const problems: Problem[] = [
    ...templates.files.flatMap(syntaxProblems),
    ...checkModules(templates),
    ...facts.problems,
    ...checkAppSettings(templates, facts),
    ...checkNames(templates, facts),
    ...checkSecrets(templates),
    ...checkApiVersions(templates),
    ...checkIdentityOnly(templates),
    ...checkRbac(templates),
  ];
  return problems.sort(compareProblems);
}

/** The CLI: prints one line per problem; resolves to the exit code (1 with problems, 0 without). */
export async function runCli(
  args: readonly string[],
  print: (line: string) => void = console.log,
  printError: (line: string) => void = console.error,
): Promise<number> {
  const root = path.resolve(args[0] ?? process.cwd());
  const problems = await checkTemplates(root);
  for (const problem of problems) print(formatProblem(problem));
  if (problems.length > 0) {
    printError(`${problems.length} problem(s) in ${path.join(root, 'infra')}`);
    return 1;
  }
  print(`infra checks: no problems in ${path.join(root, 'infra')}`);
  return 0;
}

if (require.main === module) {
  runCli(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
      process.exitCode = 2;
    },
  );
}
