#!/usr/bin/env node
// The `switchyard` command (package.json "bin"). See cli.ts for the commands.
import { runCli } from './cli.js';

const code = await runCli(process.argv.slice(2));
process.exitCode = code;
// A finished command must not be kept alive by a client library's lingering
// socket or timer; the timer itself does not hold the process open.
setTimeout(() => process.exit(code), 1_000).unref();
