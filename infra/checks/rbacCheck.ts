/**
 * Role assignments live in one rbac.bicep, are named guid(scope, principal, role) so a redeploy finds the
 * same assignment, and each has a comment right above it naming the role.
 */
import { lineOf } from './bicepParser';
import { bodyObject, getProperty, resourceType } from './bicepModel';
import { Problem } from './problem';
import { TemplateSet } from './templateSet';

const ROLE_ASSIGNMENT_TYPES = new Set([
  'microsoft.authorization/roleassignments',
  'microsoft.documentdb/databaseaccounts/sqlroleassignments',
]);
export const RBAC_FILE_NAME = 'rbac.bicep';

export function checkRbac(templates: TemplateSet): Problem[] {
  const problems: Problem[] = [];
  for (const model of templates.models.values()) {
    for (const assignment of model.declarations.filter((d) => d.kind === 'resource' && !d.existing)) {
      if (!ROLE_ASSIGNMENT_TYPES.has(resourceType(assignment)?.toLowerCase() ?? '')) continue;
      const file = model.file.relativePath;
      if (!file.endsWith(`/${RBAC_FILE_NAME}`)) {
        problems.push({
          check: 'rbac',
          file,
          line: assignment.line,
          message: `role assignment ${assignment.name} belongs in ${RBAC_FILE_NAME}`,
        });
      }
      const name = getProperty(bodyObject(assignment.value), 'name');
      const isGuid = name?.type === 'call_expression' && name.childForFieldName('function')?.text === 'guid';
      const argumentCount = name
        ?.childForFieldName('arguments')
        ?.namedChildren.filter((a) => a.type !== 'comment').length;
      if (!isGuid || (argumentCount ?? 0) < 3) {
        problems.push({
          check: 'rbac',
          file,
          line: name ? lineOf(name) : assignment.line,
          message: `role assignment ${assignment.name}: name must be guid(scope, principal, role)`,
        });
      }
      let previous = assignment.node.previousNamedSibling;
      while (previous?.type === 'decorators') previous = previous.previousNamedSibling;
      const commentAbove =
        previous?.type === 'comment' && previous.endPosition.row >= assignment.node.startPosition.row - 1;
      if (!commentAbove) {
        problems.push({
          check: 'rbac',
          file,
          line: assignment.line,
          message: `role assignment ${assignment.name}: add a comment right above it naming the role`,
        });
      }
    }
  }
  return problems;
}
