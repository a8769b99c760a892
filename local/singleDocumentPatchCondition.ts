/**
 * Makes the local Cosmos server evaluate a conditional patch's predicate against the one document being patched.
 *
 * `@vercel/cosmosdb-server` 1.0.x checks a patch condition by running `SELECT * FROM c WHERE c.id = @id AND (...)`
 * over the whole container (it has no index), so one conditional patch costs O(container size): about 70 ms with a
 * few thousand twins, where Azure Cosmos DB evaluates it on the document alone. It also lower-cases predicates that
 * start with "from c where", which breaks camelCase paths. This wraps the server's patch operation: the predicate
 * (`FROM c WHERE <condition>`, any case and spacing) is evaluated by the same query engine on that document only, a
 * false one is 412 and an unparsable one 400, as Cosmos answers; then the patch proceeds without the condition.
 * Call it in the process that runs the server, before the first request.
 *
 * The query library's parser needs ~35 ms for one twin predicate (its PEG grammar backtracks on AND chains), and the
 * predicates of successive readings differ only in their time literal. So string literals are taken out as parameters
 * and the compiled query is kept per shape: a conditional patch then costs the evaluation (~2 ms), not a parse.
 */
import compileQuery from '@zeit/cosmosdb-query';

interface PatchInput {
  id: string;
  partitionKey: string;
  condition?: string;
  [key: string]: unknown;
}
interface PatchResult {
  statusCode: number;
  body: unknown;
}
interface Collection {
  document(id: string, partitionKey: unknown): { read(): Record<string, unknown> | undefined };
}
type PatchOperation = (collection: Collection, input: PatchInput) => PatchResult;

// Internal modules of the server: the handler looks `patchOperation` up on this exports object at each call.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const patchModule = require('@vercel/cosmosdb-server/lib/handler/_patch-operations') as {
  patchOperation: PatchOperation;
};
// eslint-disable-next-line @typescript-eslint/no-require-imports
const partitionModule = require('@vercel/cosmosdb-server/lib/utils/get-partition-from-header') as {
  parsePartitionKey(partitionKey: string, defaultValue: unknown): unknown;
};

const PREDICATE = /^\s*from\s+(\w+)\s+where\s+([\s\S]+)$/i;
/**
 * A string literal without escapes. Predicates with a backslash or a `--` comment anywhere are compiled as written
 * instead (rare, and then nothing can be misread: an escaped quote or a quote inside a comment would shift the pairs).
 */
const PLAIN_STRING_LITERAL = /"[^"\\]*"|'[^'\\]*'/g;
/** Compiled predicates by shape; cleared when full (a handful of shapes per property in practice). */
const MAX_SHAPES = 512;
const compiledShapes = new Map<string, ReturnType<typeof compileQuery>>();

export interface PredicateShape {
  /** The query with each string literal replaced by `@__literalN`. */
  text: string;
  parameters: { name: string; value: string }[];
}

/**
 * `SELECT * FROM <alias> WHERE <where>` with its string literals taken out as parameters; undefined for a predicate
 * with a backslash or a comment, which is compiled as written.
 */
export function predicateShape(alias: string, where: string): PredicateShape | undefined {
  if (where.includes('\\') || where.includes('--')) return undefined;
  const parameters: PredicateShape['parameters'] = [];
  const shaped = where.replace(PLAIN_STRING_LITERAL, (literal) => {
    const name = `@__literal${parameters.length}`;
    parameters.push({ name, value: literal.slice(1, -1) });
    return name;
  });
  return { text: `SELECT * FROM ${alias} WHERE ${shaped}`, parameters };
}

/** Whether `where` holds for `document`; throws when the predicate does not parse. */
function holdsFor(alias: string, where: string, document: Record<string, unknown>): boolean {
  const asWritten = () =>
    (compileQuery(`SELECT * FROM ${alias} WHERE ${where}`).exec([document]) as { result: unknown[] }).result.length > 0;
  const shape = predicateShape(alias, where);
  if (!shape) return asWritten();
  let query = compiledShapes.get(shape.text);
  if (!query) {
    try {
      query = compileQuery(shape.text); // parses; a shape the parser refuses is not cached
      void query.code; // and translates, so that one the translator refuses is not cached either
    } catch {
      // A literal where the grammar takes no parameter (for example a property name in brackets): as written.
      return asWritten();
    }
    if (compiledShapes.size >= MAX_SHAPES) compiledShapes.clear();
    compiledShapes.set(shape.text, query);
  }
  return (query.exec([document], { parameters: shape.parameters }) as { result: unknown[] }).result.length > 0;
}
let installed = false;

export function useSingleDocumentPatchCondition(): void {
  if (installed) return;
  const original = patchModule.patchOperation;
  if (typeof original !== 'function') {
    throw new Error('@vercel/cosmosdb-server changed: no patchOperation to wrap');
  }
  patchModule.patchOperation = (collection, input) => {
    if (!input.condition) return original(collection, input);
    const { condition, ...unconditional } = input;
    const document = collection
      .document(input.id, partitionModule.parsePartitionKey(input.partitionKey, input.id))
      .read();
    if (!document) return original(collection, unconditional);
    const match = PREDICATE.exec(condition);
    let holds: boolean;
    try {
      if (!match) throw new Error('not FROM <alias> WHERE <condition>');
      holds = holdsFor(match[1], match[2], document);
    } catch {
      return { statusCode: 400, body: { code: 'BadRequest', message: 'Invalid condition in patch request.' } };
    }
    if (!holds) {
      return {
        statusCode: 412,
        body: { code: 'PreconditionFailed', message: 'Condition specified in the patch request is not satisfied.' },
      };
    }
    return original(collection, unconditional);
  };
  installed = true;
}
