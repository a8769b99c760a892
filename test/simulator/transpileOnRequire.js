/**
 * Lets a child `node` process run the TypeScript sources directly (`node -r <this> simulator/main.ts`), so the
 * CLI test needs no build: each required .ts file is transpiled (no type check) to CommonJS.
 */
const fs = require('fs');
const ts = require('typescript');

require.extensions['.ts'] = (module, filename) => {
  const { outputText } = ts.transpileModule(fs.readFileSync(filename, 'utf8'), {
    fileName: filename,
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
  });
  module._compile(outputText, filename);
};
