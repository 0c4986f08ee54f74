#!/usr/bin/env node
import { runCli } from '../dist/cli/main.js';

// A reader that leaves early (`activity --help | head -1`) is not a failure: help and
// other text written straight to stdout would otherwise end in an unhandled EPIPE.
process.stdout.on('error', (error) => {
  if (error.code !== 'EPIPE') throw error;
});
process.exitCode = await runCli(process.argv);
