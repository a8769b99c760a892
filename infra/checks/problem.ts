/** One finding of the template checks: where it is and what is wrong. */
export type CheckName =
  'syntax' | 'modules' | 'app-settings' | 'names' | 'secrets' | 'api-version' | 'identity-only' | 'rbac';

export interface Problem {
  check: CheckName;
  /** Path relative to the checked root, with `/` separators. */
  file: string;
  /** 1-based line. */
  line: number;
  message: string;
}

export function formatProblem(problem: Problem): string {
  return `${problem.file}:${problem.line}: [${problem.check}] ${problem.message}`;
}

export function compareProblems(a: Problem, b: Problem): number {
  return a.file.localeCompare(b.file) || a.line - b.line || a.message.localeCompare(b.message);
}
