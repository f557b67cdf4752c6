/**
 * The host, read the same way in Node and in a browser: environment variables and the diagnostic stream exist only
 * where there is a Node `process`, and are looked up through `globalThis`, so no module of the browser bundle names
 * a Node global.
 *
 * @module env
 */

interface HostProcess {
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly stderr?: { write(line: string): unknown };
}

const hostProcess = (): HostProcess | undefined => (globalThis as { process?: HostProcess }).process;

/** The environment variable `name` in Node; undefined where there is none (a browser). @category host */
export const envVar = (name: string): string | undefined => hostProcess()?.env?.[name];

/** Writes a diagnostic line: to stderr in Node, to the console elsewhere. @category host */
export const diagnostic = (line: string): void => {
  const stderr = hostProcess()?.stderr;
  if (stderr !== undefined) stderr.write(`${line}\n`);
  else console.warn(line);
};
