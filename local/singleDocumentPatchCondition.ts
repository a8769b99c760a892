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
      const result = compileQuery(`SELECT * FROM ${match[1]} WHERE ${match[2]}`).exec([document]) as {
        result: unknown[];
      };
      holds = result.result.length > 0;
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
