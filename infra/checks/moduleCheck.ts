/** Every module path and every file loaded with load*Content() exists next to the template that names it. */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { lineOf } from './bicepParser';
import { stringLiteralText } from './bicepModel';
import { Problem } from './problem';
import { TemplateSet, isRegistryReference } from './templateSet';

const FILE_LOADING_FUNCTIONS = new Set(['loadJsonContent', 'loadTextContent', 'loadYamlContent', 'loadFileAsBase64']);

export function checkModules(templates: TemplateSet): Problem[] {
  const problems: Problem[] = [];
  for (const model of templates.models.values()) {
    const here = path.dirname(model.file.absolutePath);
    for (const module of model.declarations.filter((d) => d.kind === 'module')) {
      const reference = module.reference;
      if (reference === undefined) {
        problems.push({
          check: 'modules',
          file: model.file.relativePath,
          line: module.line,
          message: `module ${module.name}: the path must be a plain string`,
        });
      } else if (isRegistryReference(reference)) {
        problems.push({
          check: 'modules',
          file: model.file.relativePath,
          line: module.line,
          message: `module ${module.name}: registry module "${reference}" cannot be checked offline; use a local module`,
        });
      } else if (!existsSync(path.resolve(here, reference))) {
        problems.push({
          check: 'modules',
          file: model.file.relativePath,
          line: module.line,
          message: `module ${module.name}: "${reference}" does not exist`,
        });
      }
    }
    for (const call of model.file.root.descendantsOfType('call_expression')) {
      const name = call.childForFieldName('function')?.text ?? '';
      if (!FILE_LOADING_FUNCTIONS.has(name)) continue;
      const argument = call.childForFieldName('arguments')?.namedChildren[0];
      const target = argument ? stringLiteralText(argument) : undefined;
      if (target !== undefined && !existsSync(path.resolve(here, target))) {
        problems.push({
          check: 'modules',
          file: model.file.relativePath,
          line: lineOf(call),
          message: `${name}("${target}"): the file does not exist`,
        });
      }
    }
  }
  return problems;
}
