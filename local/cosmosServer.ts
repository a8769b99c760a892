/**
 * The local Cosmos DB: `@vercel/cosmosdb-server` over https with a certificate made for `localhost`.
 * Its bundled certificate expired in 2021, so a fresh self-signed one (CN localhost, SAN localhost, 127.0.0.1)
 * is generated once with openssl into a git-ignored folder; clients trust exactly that file.
 */
import { createHttpsServer } from '@vercel/cosmosdb-server';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { Server } from 'node:https';
import { AddressInfo } from 'node:net';
import path from 'node:path';
import { useLinearFromClause } from './linearFromClause';
import { useSingleDocumentPatchCondition } from './singleDocumentPatchCondition';

/** The Cosmos DB emulator's published, well-known account key (not a secret; any key works locally). */
export const EMULATOR_KEY = 'C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==';

export interface LocalCertificate {
  certPath: string;
  keyPath: string;
}

/** Creates (once) a self-signed certificate for localhost in `dir`, valid for ten years. */
export function ensureLocalCertificate(dir: string): LocalCertificate {
  const certPath = path.join(dir, 'localhost-cert.pem');
  const keyPath = path.join(dir, 'localhost-key.pem');
  if (!existsSync(certPath) || !existsSync(keyPath)) {
    mkdirSync(dir, { recursive: true });
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-sha256',
        '-days',
        '3650',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1',
        '-keyout',
        keyPath,
        '-out',
        certPath,
      ],
      { stdio: 'ignore' },
    );
  }
  return { certPath, keyPath };
}

export interface LocalCosmosServer {
  /** The underlying server, for callers that count or observe requests (benchmarks). */
  server: Server;
  port: number;
  endpoint: string;
  certPath: string;
  close(): Promise<void>;
}

export async function startCosmosServer(options: { port?: number; certDir: string }): Promise<LocalCosmosServer> {
  const certificate = ensureLocalCertificate(options.certDir);
  useLinearFromClause();
  useSingleDocumentPatchCondition();
  const server = createHttpsServer({
    cert: readFileSync(certificate.certPath),
    key: readFileSync(certificate.keyPath),
    // Without it the server answers `Connection: close` and every request pays a TLS handshake.
    keepAlive: true,
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 8081, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    endpoint: `https://localhost:${port}`,
    certPath: certificate.certPath,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
