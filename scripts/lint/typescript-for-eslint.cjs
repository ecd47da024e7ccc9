// typescript-eslint needs TypeScript's JavaScript API, which TypeScript 7 (the
// compiler this project builds with) no longer ships. The lint run loads this
// file first (`node --require`), so typescript-eslint's `require('typescript')`
// gets TypeScript 6 (the dev dependency `typescript-for-eslint`) while tsc
// stays on 7. Nothing outside `npm run lint` loads it.
'use strict';
const Module = require('node:module'); // eslint-disable-line @typescript-eslint/no-require-imports

const resolveFilename = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (request === 'typescript' || request.startsWith('typescript/')) {
    request = `typescript-for-eslint${request.slice('typescript'.length)}`;
  }
  return resolveFilename.call(this, request, ...rest);
};
