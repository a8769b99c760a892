/**
 * Identity only: every service that could also take keys has key access switched off, so no key or
 * connection string exists to leak. Resources declared `existing` are not checked (they are declared elsewhere).
 */
import { bodyObject, evaluate, getPath, resourcesOfType } from './bicepModel';
import { Problem } from './problem';
import { TemplateSet } from './templateSet';

interface IdentityRule {
  type: string;
  path: readonly string[];
  expected: boolean;
  why: string;
}

const IDENTITY_RULES: readonly IdentityRule[] = [
  {
    type: 'Microsoft.DocumentDB/databaseAccounts',
    path: ['properties', 'disableLocalAuth'],
    expected: true,
    why: 'Cosmos DB keys must be off',
  },
  {
    type: 'Microsoft.ServiceBus/namespaces',
    path: ['properties', 'disableLocalAuth'],
    expected: true,
    why: 'Service Bus SAS keys must be off',
  },
  {
    type: 'Microsoft.Storage/storageAccounts',
    path: ['properties', 'allowSharedKeyAccess'],
    expected: false,
    why: 'storage shared keys must be off',
  },
  {
    type: 'Microsoft.Insights/components',
    path: ['properties', 'DisableLocalAuth'],
    expected: true,
    why: 'Application Insights ingestion must be Entra-only',
  },
  {
    type: 'Microsoft.ContainerRegistry/registries',
    path: ['properties', 'adminUserEnabled'],
    expected: false,
    why: 'the registry admin user (a password) must be off',
  },
  {
    type: 'Microsoft.KeyVault/vaults',
    path: ['properties', 'enableRbacAuthorization'],
    expected: true,
    why: 'Key Vault access must go through Entra RBAC',
  },
];

export function checkIdentityOnly(templates: TemplateSet): Problem[] {
  const problems: Problem[] = [];
  for (const model of templates.models.values()) {
    for (const rule of IDENTITY_RULES) {
      for (const resource of resourcesOfType(model, rule.type)) {
        if (resource.existing) continue;
        const value = evaluate(getPath(bodyObject(resource.value), rule.path), model);
        if (value !== rule.expected) {
          problems.push({
            check: 'identity-only',
            file: model.file.relativePath,
            line: resource.line,
            message: `resource ${resource.name}: ${rule.path.join('.')} must be ${String(rule.expected)} (${rule.why})`,
          });
        }
      }
    }
  }
  return problems;
}
