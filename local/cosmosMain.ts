/** CLI: the local Cosmos DB server. `node dist/local/cosmosMain.js --port 8081 --cert-dir .local/certs` */
import { startCosmosServer } from './cosmosServer';
import { parseFlags } from './flags';

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2), { port: '8081', 'cert-dir': '.local/certs' });
  const server = await startCosmosServer({ port: Number(flags.port), certDir: flags['cert-dir'] });
  console.log(`Cosmos DB (local) listening at ${server.endpoint}`);
  const stop = () => void server.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error: unknown) => {
  console.error(`Cosmos DB (local) failed to start: ${(error as Error).message}`);
  process.exit(1);
});
