import type { Command } from 'commander';
import { suggestion } from '../domain/closest-names.js';

/** The flags every command takes (withCommonOptions), each with a value. */
export const commonFlags = new Set(['--database-url', '--data-dir', '--redis-url', '--format', '-o']);

/**
 * The arguments with the common flags given before the command (`activity --data-dir X
 * tail …`), or between a command and its subcommand (`activity sink --data-dir X
 * list`), moved after the command's name, or after its subcommand's for the commands in
 * `nested`: where commander reads them.
 */
export function withCommonFlagsAfterCommand(argv: readonly string[], nested: ReadonlySet<string>): string[] {
  const [node = '', script = '', ...args] = argv;
  const moved: string[] = [];
  const path: string[] = [];
  let index = 0;
  const takeFlags = () => {
    while (index < args.length) {
      const arg = args[index] as string;
      if (!commonFlags.has(arg.split('=', 1)[0] as string)) return;
      const takesNext = !arg.includes('=') && index + 1 < args.length;
      moved.push(...args.slice(index, takesNext ? index + 2 : index + 1));
      index += takesNext ? 2 : 1;
    }
  };
  takeFlags();
  if (index >= args.length) return [...argv];
  const command = args[index] as string;
  path.push(command);
  index++;
  if (nested.has(command)) {
    const [flagsBefore, indexBefore] = [moved.length, index];
    takeFlags();
    const sub = args[index];
    if (sub !== undefined && !sub.startsWith('-')) {
      path.push(sub);
      index++;
    } else {
      // No subcommand after them: left where they were, for commander to report.
      moved.length = flagsBefore;
      index = indexBefore;
    }
  }
  if (moved.length === 0) return [...argv];
  return [node, script, ...path, ...moved, ...args.slice(index)];
}

/**
 * The first flag of the command line that the command it names does not take, with a
 * suggestion: reported before a missing required flag, which it often is misspelt
 * (`query --tenat acme`).
 */
export function unknownFlagIn(program: Command, args: readonly string[]): string | undefined {
  let command = program;
  for (const arg of args) {
    const sub = command.commands.find((each) => each.name() === arg);
    if (sub) command = sub;
  }
  const known = new Set(['--help', '-h']);
  for (let each: Command | null = command; each; each = each.parent) {
    for (const option of each.options) {
      if (option.long) known.add(option.long);
      if (option.short) known.add(option.short);
    }
  }
  const given = args.find((arg, index) => {
    if (!arg.startsWith('-') || arg === '-' || args.slice(0, index).includes('--')) return false;
    return !known.has(arg.split('=', 1)[0] as string);
  });
  if (given === undefined) return undefined;
  const flag = given.split('=', 1)[0] as string;
  return `unknown option '${flag}'${suggestion(
    flag,
    [...known].filter((name) => name.startsWith('--')),
  )}`;
}
