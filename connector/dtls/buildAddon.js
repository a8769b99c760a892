// Builds the DTLS addon (connector/dtls/build/Release/dtls.node) with the node-gyp that ships inside npm, against
// the headers next to the running node (<prefix>/include/node, OpenSSL's included), so no download is needed.
// Runs as the root package's `install` script (npm ci) and in connector/Dockerfile. Needs python3, make and a C
// compiler; fails with a message that names what is missing.
const { execFileSync } = require('node:child_process');
const { existsSync } = require('node:fs');
const path = require('node:path');

const nodedir = path.dirname(path.dirname(process.execPath));
if (!existsSync(path.join(nodedir, 'include', 'node', 'openssl', 'ssl.h'))) {
  console.error(`DTLS addon: no Node headers with OpenSSL under ${nodedir}/include/node (install node's headers)`);
  process.exit(1);
}

/** node-gyp's CLI: npm tells scripts where its bundled copy is; else look next to npm, then in node_modules. */
function findNodeGyp() {
  const candidates = [process.env.npm_config_node_gyp];
  if (process.env.npm_execpath) {
    candidates.push(
      path.join(path.dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    );
  }
  candidates.push(path.join(nodedir, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  const found = candidates.find((candidate) => candidate && existsSync(candidate));
  if (!found) {
    console.error(
      'DTLS addon: node-gyp not found (it ships with npm; tried ' + candidates.filter(Boolean).join(', ') + ')',
    );
    process.exit(1);
  }
  return found;
}

execFileSync(process.execPath, [findNodeGyp(), 'rebuild', `--nodedir=${nodedir}`, '--directory', __dirname], {
  stdio: 'inherit',
});
