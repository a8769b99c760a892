/** Every resource, nested ones included, names its API version: `Provider/type@yyyy-mm-dd[-preview]`. */
import { lineOf } from './bicepParser';
import { allResourceNodes, stringLiteralText } from './bicepModel';
import { Problem } from './problem';
import { TemplateSet } from './templateSet';

const TYPED_REFERENCE = /^[A-Za-z0-9.]+\/[A-Za-z0-9./]+@\d{4}-\d{2}-\d{2}(-[a-z]+)?$/;
const CHILD_REFERENCE = /^[A-Za-z0-9]+(\/[A-Za-z0-9]+)*@\d{4}-\d{2}-\d{2}(-[a-z]+)?$/;

export function checkApiVersions(templates: TemplateSet): Problem[] {
  const problems: Problem[] = [];
  for (const model of templates.models.values()) {
    for (const resource of allResourceNodes(model.file)) {
      const named = resource.namedChildren.filter((child) => child.type !== 'comment');
      const name = named[0]?.text ?? '?';
      const reference = named[1] ? stringLiteralText(named[1]) : undefined;
      const nested = resource.parent?.type === 'object_property';
      const pattern = nested ? CHILD_REFERENCE : TYPED_REFERENCE;
      if (reference === undefined || !(pattern.test(reference) || TYPED_REFERENCE.test(reference))) {
        problems.push({
          check: 'api-version',
          file: model.file.relativePath,
          line: lineOf(resource),
          message: `resource ${name} '${reference ?? named[1]?.text ?? ''}' does not declare an API version (Type@yyyy-mm-dd)`,
        });
      }
    }
  }
  return problems;
}
