/** The parsed templates under `<root>/infra`, with a model per file, shared by every check. */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { BicepFile, findBicepFiles, parseBicepFile } from './bicepParser';
import { BicepModel, Declaration, buildModel } from './bicepModel';

export const INFRA_DIR = 'infra';
export const MAIN_TEMPLATE = 'infra/main.bicep';

export interface TemplateSet {
  root: string;
  files: BicepFile[];
  models: Map<string, BicepModel>;
}

export async function loadTemplates(root: string): Promise<TemplateSet> {
  const infra = path.join(root, INFRA_DIR);
  const files = existsSync(infra) ? await Promise.all(findBicepFiles(infra).map((f) => parseBicepFile(root, f))) : [];
  return { root, files, models: new Map(files.map((file) => [file.relativePath, buildModel(file)])) };
}

/** A registry reference (`br:`, `br/public:`, `ts:`), which has no local file. */
export function isRegistryReference(reference: string): boolean {
  return /^(br|ts)[:/]/.test(reference);
}

/** The model of a local module's target file, when it exists and parsed. */
export function moduleTarget(templates: TemplateSet, model: BicepModel, module: Declaration): BicepModel | undefined {
  if (!module.reference || isRegistryReference(module.reference)) return undefined;
  const absolute = path.resolve(path.dirname(model.file.absolutePath), module.reference);
  const relative = path.relative(templates.root, absolute).split(path.sep).join('/');
  return templates.models.get(relative);
}
