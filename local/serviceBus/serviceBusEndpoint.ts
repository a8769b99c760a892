/**
 * The local Service Bus-compatible endpoint: AMQP 1.0 over plain TCP, built on rhea, that the unmodified
 * `@azure/service-bus` 7.x SDK uses with `UseDevelopmentEmulator=true`. With that flag the SDK connects without TLS,
 * with SASL ANONYMOUS, to the port in the connection string's Endpoint (`sb://localhost:PORT`), 5672 if none.
 *
 * Entities come from a config file that mirrors the Bicep templates (entitiesConfig.ts); links are routed by
 * linkRouter.ts; entity semantics live in messageEntity.ts.
 */
import type { AddressInfo, Server, Socket } from 'node:net';
import { create_container } from 'rhea';
import { systemClock } from './clock';
import defaultEntities from './entities.json';
import {
  type EntitiesConfig,
  type NamespaceSettings,
  loadEntitiesConfig,
  resolveEntitiesConfig,
} from './entitiesConfig';
import { createEndpointLog } from './endpointLog';
import { LinkRouter } from './linkRouter';
import { ServiceBusNamespace } from './serviceBusNamespace';

export interface ServiceBusEndpointOptions {
  /** TCP port; 0 picks a free one. Default 5672 (the Service Bus emulator's port). */
  port?: number;
  /** Interface to listen on. Default 127.0.0.1. */
  host?: string;
  /** Entities to declare (the shape of entities.json); wins over `entitiesPath`. */
  entities?: EntitiesConfig;
  /** Entities file to load. Default: local/serviceBus/entities.json. */
  entitiesPath?: string;
  /** Receives every log line (`debug: ...`, `error: ...`); without it only errors are printed, to stderr. */
  log?: (line: string) => void;
}

export interface ServiceBusEndpoint {
  /** The port actually bound. */
  readonly port: number;
  /** Connection string for the `@azure/service-bus` SDK. */
  readonly connectionString: string;
  /** Closes every client connection and stops listening. */
  close(): Promise<void>;
}

export const DEFAULT_SERVICE_BUS_PORT = 5672;
const DEFAULT_HOST = '127.0.0.1';
/** Clients get this long to answer the close frame before their sockets are destroyed, ms. */
const CLOSE_GRACE_MS = 500;

/** Starts the endpoint; rejects if the entities are invalid (the error names the field) or the port is taken. */
export async function startServiceBusEndpoint(options: ServiceBusEndpointOptions = {}): Promise<ServiceBusEndpoint> {
  const log = createEndpointLog(options.log);
  const namespace = new ServiceBusNamespace(entitySettingsOf(options), systemClock);
  const router = new LinkRouter(namespace, systemClock, log);
  const container = create_container({
    id: 'lwm2m-twins-local-service-bus',
    // A send is accepted only once enqueued; a modified outcome (abandon, defer) is not also reported as released.
    autoaccept: false,
    treat_modified_as_released: false,
  });
  container.sasl_server_mechanisms.enable_anonymous();
  container.sasl_server_mechanisms.enable_plain(() => true);
  router.register(container);

  const host = options.host ?? DEFAULT_HOST;
  const server: Server = container.listen({ port: options.port ?? DEFAULT_SERVICE_BUS_PORT, host });
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    // Small request/response frames: without this, Nagle's algorithm and delayed ACKs add ~40 ms per exchange.
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
  } catch (error) {
    namespace.dispose();
    throw error;
  }
  server.on('error', (error) => log.error(`server: ${error.message}`));
  const port = (server.address() as AddressInfo).port;
  log.debug(`listening on ${host}:${port}; entities: ${namespace.paths.join(', ')}`);

  return {
    port,
    connectionString: connectionStringFor(host, port),
    async close() {
      router.closeAll();
      const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.race([serverClosed, delay(CLOSE_GRACE_MS)]);
      for (const socket of sockets) socket.destroy();
      await serverClosed;
      namespace.dispose();
      log.debug('stopped');
    },
  };
}

/** Connection string of the endpoint; loopback and wildcard hosts are written `localhost`. */
export function connectionStringFor(host: string, port: number): string {
  const loopbackOrAny = ['127.0.0.1', '::1', 'localhost', '0.0.0.0', '::'].includes(host);
  const endpointHost = loopbackOrAny ? 'localhost' : host.includes(':') ? `[${host}]` : host;
  return (
    `Endpoint=sb://${endpointHost}:${port};SharedAccessKeyName=RootManageSharedAccessKey;` +
    'SharedAccessKey=local;UseDevelopmentEmulator=true'
  );
}

function entitySettingsOf(options: ServiceBusEndpointOptions): NamespaceSettings {
  if (options.entities) return resolveEntitiesConfig(options.entities, 'options.entities');
  if (options.entitiesPath) return loadEntitiesConfig(options.entitiesPath);
  return resolveEntitiesConfig(defaultEntities, 'local/serviceBus/entities.json');
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
