/**
 * Every app setting the code reads is set by the templates on the app that reads it (Functions app settings
 * or the connector container's environment), and every setting the templates set is read by that app or
 * is a runtime setting with a reason (runtimeSettings.ts). Local-only settings (keys, connection strings)
 * must never be set. Outputs named like app settings (`X__y`) must be settings the code reads.
 */
import { lineOf } from './bicepParser';
import {
  BicepModel,
  UNKNOWN,
  arrayItems,
  bodyObject,
  evaluate,
  getPath,
  getProperty,
  propertyKey,
  objectProperties,
  resourcesOfType,
} from './bicepModel';
import { APP_CONFIG_LOADERS, AppName, CodeFacts } from './codeFacts';
import { Problem } from './problem';
import { LOCAL_ONLY_SETTINGS, RUNTIME_SETTINGS } from './runtimeSettings';
import { MAIN_TEMPLATE, TemplateSet } from './templateSet';

interface SettingSite {
  name: string;
  file: string;
  line: number;
}

const APP_DESCRIPTIONS: Record<AppName, string> = {
  functionApp: 'the Functions app settings (Microsoft.Web/sites)',
  connector: 'the connector container environment (Microsoft.ContainerInstance/containerGroups)',
};

function nameOf(item: ReturnType<typeof getProperty>, model: BicepModel): string | undefined {
  const value = evaluate(getProperty(item, 'name'), model);
  return typeof value === 'string' ? value : undefined;
}

function collectNamedItems(
  list: ReturnType<typeof getProperty>,
  model: BicepModel,
  what: string,
  sites: SettingSite[],
  problems: Problem[],
): void {
  if (!list) return;
  if (list.type !== 'array') {
    problems.push({
      check: 'app-settings',
      file: model.file.relativePath,
      line: lineOf(list),
      message: `${what} must be a literal array of { name: ..., value: ... } so the checks can read the names`,
    });
    return;
  }
  for (const item of arrayItems(list)) {
    const name = nameOf(item, model);
    if (name === undefined) {
      problems.push({
        check: 'app-settings',
        file: model.file.relativePath,
        line: lineOf(item),
        message: `${what}: an entry whose name is not a literal the checks can read`,
      });
    } else {
      sites.push({ name, file: model.file.relativePath, line: lineOf(item) });
    }
  }
}

function settingsSetByTemplates(
  templates: TemplateSet,
  problems: Problem[],
): Record<AppName, SettingSite[] | undefined> {
  let functionApp: SettingSite[] | undefined;
  let connector: SettingSite[] | undefined;
  for (const model of templates.models.values()) {
    for (const site of resourcesOfType(model, 'Microsoft.Web/sites')) {
      const body = bodyObject(site.value);
      const kind = evaluate(getProperty(body, 'kind'), model);
      if (site.existing || kind === UNKNOWN || !String(kind).includes('functionapp')) continue;
      functionApp ??= [];
      collectNamedItems(
        getPath(body, ['properties', 'siteConfig', 'appSettings']),
        model,
        'siteConfig.appSettings',
        functionApp,
        problems,
      );
    }
    for (const config of resourcesOfType(model, 'Microsoft.Web/sites/config')) {
      const body = bodyObject(config.value);
      if (evaluate(getProperty(body, 'name'), model) !== 'appsettings') continue;
      functionApp ??= [];
      const properties = getProperty(body, 'properties');
      for (const property of properties?.type === 'object' ? objectProperties(properties) : []) {
        const name = propertyKey(property);
        if (name !== undefined) functionApp.push({ name, file: model.file.relativePath, line: lineOf(property) });
      }
    }
    for (const group of resourcesOfType(model, 'Microsoft.ContainerInstance/containerGroups')) {
      if (group.existing) continue;
      connector ??= [];
      for (const container of arrayItems(getPath(bodyObject(group.value), ['properties', 'containers']))) {
        collectNamedItems(
          getPath(container, ['properties', 'environmentVariables']),
          model,
          'environmentVariables',
          connector,
          problems,
        );
      }
    }
  }
  return { functionApp, connector };
}

export function checkAppSettings(templates: TemplateSet, facts: CodeFacts): Problem[] {
  const problems: Problem[] = [];
  const setBy = settingsSetByTemplates(templates, problems);

  for (const app of Object.keys(APP_CONFIG_LOADERS) as AppName[]) {
    const sites = setBy[app];
    if (!sites) {
      problems.push({
        check: 'app-settings',
        file: MAIN_TEMPLATE,
        line: 1,
        message: `no template declares ${APP_DESCRIPTIONS[app]}`,
      });
      continue;
    }
    const setNames = new Set<string>();
    for (const site of sites) {
      if (setNames.has(site.name)) {
        problems.push({
          check: 'app-settings',
          file: site.file,
          line: site.line,
          message: `${site.name} is set twice in ${APP_DESCRIPTIONS[app]}`,
        });
      }
      setNames.add(site.name);
      const localOnly = LOCAL_ONLY_SETTINGS[site.name];
      const readByApp = facts.settings.get(site.name)?.apps.has(app) ?? false;
      if (localOnly) {
        problems.push({
          check: 'app-settings',
          file: site.file,
          line: site.line,
          message: `${site.name} is a local-only setting (${localOnly}); Azure must not get it`,
        });
      } else if (!readByApp && !(site.name in RUNTIME_SETTINGS[app])) {
        problems.push({
          check: 'app-settings',
          file: site.file,
          line: site.line,
          message: `${site.name} is set on ${APP_DESCRIPTIONS[app]} but the code never reads it there (${APP_CONFIG_LOADERS[app]}) and it is not a runtime setting in infra/checks/runtimeSettings.ts`,
        });
      }
    }
    for (const read of facts.settings.values()) {
      if (!read.apps.has(app) || read.name in LOCAL_ONLY_SETTINGS || setNames.has(read.name)) continue;
      problems.push({
        check: 'app-settings',
        file: read.file,
        line: read.line,
        message: `${read.name} is read by the ${app} but no template sets it on ${APP_DESCRIPTIONS[app]}`,
      });
    }
  }

  const main = templates.models.get(MAIN_TEMPLATE);
  for (const output of main?.declarations.filter((d) => d.kind === 'output') ?? []) {
    if (output.name.includes('__') && !facts.settings.has(output.name)) {
      problems.push({
        check: 'app-settings',
        file: MAIN_TEMPLATE,
        line: output.line,
        message: `output ${output.name} is named like an app setting, but the code reads no such setting`,
      });
    }
  }
  return problems;
}
