/**
 * Makes the local Cosmos server's queries linear in the container size.
 *
 * `@vercel/cosmosdb-server` 1.0.x runs SQL through `@zeit/cosmosdb-query` 0.7.2, which compiles the FROM clause to
 * `$c.reduce(($, c) => typeof c !== "undefined" ? [...$, { c: c }] : $, [])`: the accumulator is copied for each
 * document, so one query over n documents costs O(n^2) (about 0.4 s at 10,000 twins, 15 s at 15,000, and a
 * 60 s client timeout from about 20,000). This rewrites exactly that generated form (a single source, no JOIN) to
 * the equivalent `filter`/`map`; any other form is left as generated. Call it in the process that runs the server,
 * before the first query.
 */
import compileQuery from '@zeit/cosmosdb-query';

/** The FROM clause's generated accumulation, with the source alias (group 1) and the query alias (group 2). */
const QUADRATIC_FROM =
  /\$c\.reduce\(\(\$, (\w+)\) => typeof \1 !== "undefined" \? \[\.\.\.\$, \{\s*(\w+): \1\s*\}\] : \$, \[\]\)/g;

let installed = false;

/** Patches the query compiler's `code` getter, once per process. */
export function useLinearFromClause(): void {
  if (installed) return;
  const prototype = Object.getPrototypeOf(compileQuery('SELECT * FROM c')) as object;
  const descriptor = Object.getOwnPropertyDescriptor(prototype, 'code');
  const generated = descriptor?.get;
  if (!generated) throw new Error('@zeit/cosmosdb-query changed: its Query has no `code` getter to patch');
  Object.defineProperty(prototype, 'code', {
    configurable: true,
    get(this: object): string {
      const code = generated.call(this) as string;
      return code.replace(
        QUADRATIC_FROM,
        (_match, source: string, alias: string) =>
          `$c.filter((${source}) => typeof ${source} !== "undefined").map((${source}) => ({ ${alias}: ${source} }))`,
      );
    },
  });
  installed = true;
}
