// Checks that the running Node.js can run this project, before anything else loads: the sources
// are TypeScript run by Node's type stripping, which needs Node >= 22.18. `npm install` runs this
// file (the preinstall script) and bin/rum.js calls it before importing any TypeScript.
// Written in ES5 CommonJS so that any old Node parses it and prints the message, not a SyntaxError.
'use strict';

var REQUIRED = [22, 18, 0];

/** Whether a version such as "20.20.2" is older than REQUIRED. */
function tooOld(version) {
  var parts = String(version).replace(/^v/, '').split('.');
  var i;
  var n;
  for (i = 0; i < REQUIRED.length; i++) {
    n = parseInt(parts[i] || '0', 10) || 0;
    if (n !== REQUIRED[i]) return n < REQUIRED[i];
  }
  return false;
}

function message(version, execPath) {
  var root = __dirname.replace(/[\\/]scripts$/, '');
  return (
    'rum-node needs Node.js >= ' +
    REQUIRED[0] +
    '.' +
    REQUIRED[1] +
    ' (Node 24 recommended); this is Node ' +
    version +
    ' (' +
    execPath +
    ').\n' +
    'To put Node 24 first on your PATH (fetched from the npm registry into .tools/), run in ' +
    root +
    ':\n' +
    '  . scripts/node24.sh\n' +
    'then run the command again; or install Node 24 from https://nodejs.org/.\n'
  );
}

/** Exits with the message when this Node is too old; returns otherwise. */
function checkNode() {
  var version = process.versions.node;
  if (tooOld(version)) {
    process.stderr.write(message(version, process.execPath));
    process.exit(1);
  }
}

module.exports = { REQUIRED: REQUIRED, tooOld: tooOld, message: message, checkNode: checkNode };

if (require.main === module) checkNode();
