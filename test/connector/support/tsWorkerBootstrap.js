/**
 * Runs connector/readingsSinkThread.ts in a worker thread under jest, which transforms the test's own thread only:
 * .ts files required from here are transpiled on the fly with the project's TypeScript.
 */
const fs = require('node:fs');
const path = require('node:path');
const ts = require('typescript');

require.extensions['.ts'] = (module, filename) => {
  const { outputText } = ts.transpileModule(fs.readFileSync(filename, 'utf8'), {
    fileName: filename,
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
  });
  module._compile(outputText, filename);
};

require(path.join(__dirname, '..', '..', '..', 'connector', 'readingsSinkThread.ts'));
