/**
 * The floor of any HTTP shallow read, for bench/shallowRead.ts: a bare `node:http` server in its own process that
 * does what the function does at its core (one SDK point read, the twin as JSON with its ETag) and nothing else:
 * no Functions library, no routing, no validation, no problem+json. Not part of the app.
 *
 *   node dist/bench/bareReadServer.js <port>      (Cosmos settings from the environment, as for the app)
 *
 * Prints `ready` once it listens.
 */
import http from 'node:http';
import { loadCosmosConfig } from '../shared/config';
import { createCosmosClient } from '../shared/cosmosClient';
import { openTwinsContainer } from '../shared/cosmosTwinStore';

async function main(): Promise<void> {
  const port = Number(process.argv[2]);
  const config = loadCosmosConfig(process.env);
  const container = await openTwinsContainer(createCosmosClient(config), config.databaseName);
  const server = http.createServer((req, res) => {
    const id = decodeURIComponent((req.url ?? '').slice('/twins/'.length));
    container
      .item(id, id)
      .read()
      .then(
        ({ resource }) => {
          if (!resource) {
            res.writeHead(404).end();
            return;
          }
          res
            .writeHead(200, { 'content-type': 'application/json', etag: resource._etag })
            .end(JSON.stringify(resource));
        },
        () => res.writeHead(500).end(),
      );
  });
  server.listen(port, '127.0.0.1', () => process.stdout.write('ready\n'));
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
