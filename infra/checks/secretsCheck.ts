/**
 * No output, deployment log or plain setting carries a secret. Secrets are `@secure()` params, `list*()`
 * results (listKeys, listConnectionStrings, ...), `getSecret()` and any `var` built from them. A secret may
 * only flow into: a `secureValue` (container environment), a Key Vault secret's `properties.value`, or a
 * module parameter that is itself `@secure()` (otherwise ARM records it in the deployment history).
 * Outputs are also refused when their name says they hold a key, password, token or connection string.
 */
import { SyntaxNode, lineOf } from './bicepParser';
import { BicepModel, Declaration, propertyKey, propertyValue } from './bicepModel';
import { Problem } from './problem';
import { TemplateSet, moduleTarget } from './templateSet';

const SECRET_CALL = /^(list[A-Za-z]*|getSecret)$/;
const SECRET_OUTPUT_NAME = /(connection_?string|password|secret|api_?key|account_?key|primary_?key|sas|token)/i;
const HARMLESS_OUTPUT_NAME = /(uri|url|name|id)$/i;
const KEY_VAULT_SECRET_TYPE = 'microsoft.keyvault/vaults/secrets';
const DECLARATION_TYPES = new Set([
  'parameter_declaration',
  'variable_declaration',
  'resource_declaration',
  'module_declaration',
  'output_declaration',
]);

function calledName(call: SyntaxNode): string {
  const callee = call.childForFieldName('function');
  if (!callee) return '';
  return callee.type === 'member_expression' ? (callee.childForFieldName('property')?.text ?? '') : callee.text;
}

function isSecureParam(declaration: Declaration | undefined): boolean {
  if (!declaration || declaration.kind !== 'param') return false;
  const typeText = declaration.node.namedChildren[1]?.text ?? '';
  return declaration.decorators.includes('secure') || typeText === 'secureString' || typeText === 'secureObject';
}

/** Nodes that produce a secret value: secret calls, and identifiers naming secure params or tainted vars. */
function secretSources(model: BicepModel, tainted: Set<string>, within: SyntaxNode): SyntaxNode[] {
  const sources: SyntaxNode[] = [];
  const visit = (node: SyntaxNode): void => {
    if (node.type === 'call_expression' && SECRET_CALL.test(calledName(node))) {
      sources.push(node);
      return;
    }
    if (node.type === 'identifier') {
      const parent = node.parent;
      const isKey = parent?.type === 'object_property' && parent.namedChildren[0]?.id === node.id;
      const isDeclaredName = parent && DECLARATION_TYPES.has(parent.type) && parent.namedChildren[0]?.id === node.id;
      const declaration = model.byName.get(node.text);
      if (
        !isKey &&
        !isDeclaredName &&
        (isSecureParam(declaration) || (declaration?.kind === 'var' && tainted.has(node.text)))
      ) {
        sources.push(node);
      }
      return;
    }
    for (const child of node.namedChildren) visit(child);
  };
  visit(within);
  return sources;
}

function taintedVariables(model: BicepModel): Set<string> {
  const tainted = new Set<string>();
  let changed = true;
  while (changed) {
    changed = false;
    for (const declaration of model.declarations) {
      if (declaration.kind !== 'var' || tainted.has(declaration.name) || !declaration.value) continue;
      if (secretSources(model, tainted, declaration.value).length > 0) {
        tainted.add(declaration.name);
        changed = true;
      }
    }
  }
  return tainted;
}

/** The property keys from the declaration body down to `node`, and the declaration node. */
function propertyChain(node: SyntaxNode): { keys: string[]; declaration?: SyntaxNode } {
  const keys: string[] = [];
  let current: SyntaxNode = node;
  while (current.parent) {
    const parent: SyntaxNode = current.parent;
    if (parent.type === 'object_property' && propertyValue(parent)?.id === current.id) {
      keys.unshift(propertyKey(parent) ?? '?');
    }
    if (DECLARATION_TYPES.has(parent.type)) return { keys, declaration: parent };
    current = parent;
  }
  return { keys };
}

export function checkSecrets(templates: TemplateSet): Problem[] {
  const problems: Problem[] = [];
  for (const model of templates.models.values()) {
    const file = model.file.relativePath;
    const tainted = taintedVariables(model);
    const declarationAt = new Map(model.declarations.map((d) => [d.node.id, d]));
    for (const source of secretSources(model, tainted, model.file.root)) {
      const { keys, declaration: declarationNode } = propertyChain(source);
      const declaration = declarationNode ? declarationAt.get(declarationNode.id) : undefined;
      const what = `secret "${source.text.slice(0, 50)}"`;
      if (declarationNode?.type === 'variable_declaration' || declarationNode?.type === 'parameter_declaration')
        continue;
      if (declarationNode?.type === 'output_declaration') {
        const name = declarationNode.namedChildren[0]?.text ?? '?';
        problems.push({ check: 'secrets', file, line: lineOf(source), message: `output ${name} carries the ${what}` });
        continue;
      }
      if (declarationNode?.type === 'module_declaration' && declaration) {
        const parameter = keys[0] === 'params' ? keys[1] : undefined;
        const target = moduleTarget(templates, model, declaration);
        const targetParameter = parameter ? target?.byName.get(parameter) : undefined;
        if (!parameter || !isSecureParam(targetParameter)) {
          problems.push({
            check: 'secrets',
            file,
            line: lineOf(source),
            message: `module ${declaration.name} gets the ${what} in ${keys.join('.') || 'its body'}, which is not a @secure() parameter of ${declaration.reference ?? 'the module'}: the deployment history would record it`,
          });
        }
        continue;
      }
      if (declarationNode?.type === 'resource_declaration') {
        const type = declarationNode.namedChildren[1]?.text.replace(/^'|'$/g, '').split('@')[0].toLowerCase() ?? '';
        const name = declarationNode.namedChildren[0]?.text ?? '?';
        const last = keys[keys.length - 1];
        const keyVaultValue = type === KEY_VAULT_SECRET_TYPE && keys.join('.') === 'properties.value';
        if (last === 'secureValue' || keyVaultValue) continue;
        problems.push({
          check: 'secrets',
          file,
          line: lineOf(source),
          message: `resource ${name} puts the ${what} in ${keys.join('.') || 'its body'}; only secureValue or a Key Vault secret may hold it`,
        });
        continue;
      }
      problems.push({
        check: 'secrets',
        file,
        line: lineOf(source),
        message: `the ${what} is used outside a secure field`,
      });
    }
    for (const output of model.declarations.filter((d) => d.kind === 'output')) {
      if (SECRET_OUTPUT_NAME.test(output.name) && !HARMLESS_OUTPUT_NAME.test(output.name)) {
        problems.push({
          check: 'secrets',
          file,
          line: output.line,
          message: `output ${output.name}: outputs must not hold keys, passwords, tokens or connection strings`,
        });
      }
    }
  }
  return problems;
}
