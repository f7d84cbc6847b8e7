/**
 * Certificates for TLS tests, made with openssl in a temp dir: a CA, a server certificate for
 * localhost and 127.0.0.1 signed by it, and a client certificate (mTLS) signed by it.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempHome } from './helpers.js';

export interface TestCerts {
  dir: string;
  /** file paths */
  caCert: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** PEM text */
  pem: { ca: string; serverCert: string; serverKey: string };
  cleanup(): void;
}

let cached: TestCerts | undefined;

/** The same certificates for the whole test file (openssl takes ~100 ms a key). */
export function testCerts(): TestCerts {
  if (cached) return cached;
  const dir = tempHome('stigmer-certs-');
  const ssl = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=stigmer test CA');
  for (const [name, cn, san] of [
    ['server', 'localhost', 'subjectAltName=DNS:localhost,IP:127.0.0.1'],
    ['client', 'stigmer test client', 'extendedKeyUsage=clientAuth'],
  ] as const) {
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
    writeFileSync(join(dir, `${name}.ext`), `${san}\n`);
    ssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`);
  }
  return (cached = {
    dir,
    caCert: join(dir, 'ca.pem'),
    serverCert: join(dir, 'server.pem'),
    serverKey: join(dir, 'server.key'),
    clientCert: join(dir, 'client.pem'),
    clientKey: join(dir, 'client.key'),
    pem: { ca: readFileSync(join(dir, 'ca.pem'), 'utf8'), serverCert: readFileSync(join(dir, 'server.pem'), 'utf8'), serverKey: readFileSync(join(dir, 'server.key'), 'utf8') },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  });
}
