/**
 * `stigmer internal server`: the reference stigmer-server in the foreground.
 *
 *   env checked -> store opened (lock, snapshot, log replay) -> listening -> ... -> signal
 *     -> stop accepting, end streams, answer waiting claims -> store flushed -> exit 0
 *
 * This is a process entry of its own (the stack starts it as a service), so it installs its own
 * signal handlers: the CLI's "undoing what was started" handling does not apply to a server.
 */
import { join, resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import { EXIT } from '../../util/errors.js';
import { stigmerVersion } from '../../util/paths.js';
import { formatAddress, isLoopback, parseAddress, type Address } from '../../util/address.js';
import { DEFAULT_LEASE_MS } from './model.js';
import { Store, StoreCorruptError } from './store.js';
import { StoreLockedError } from './lock.js';
import { Service } from './service.js';
import { createApiServer } from './http.js';

/** Where the store lives inside STIGMER_DATA_DIR. */
export const STORE_DIR = 'server';
const SHUTDOWN_GRACE_MS = 3000;

export interface ServerEnv {
  address: Address;
  dataDir: string;
  leaseMs: number;
}

class EnvError extends Error {}

/** Read and check the server's environment; throws EnvError with a message a person can act on. */
export function readServerEnv(env: NodeJS.ProcessEnv): ServerEnv {
  const rawAddress = env['STIGMER_SERVER_ADDRESS'];
  if (!rawAddress) throw new EnvError('STIGMER_SERVER_ADDRESS is not set; expected host:port, e.g. localhost:50051');
  const address = parseAddress(rawAddress);
  if (!address) throw new EnvError(`Expected STIGMER_SERVER_ADDRESS to be host:port (e.g. localhost:50051), got "${rawAddress}"`);
  if (!isLoopback(address.host)) {
    throw new EnvError(`Expected STIGMER_SERVER_ADDRESS to name a loopback host (localhost, 127.0.0.1 or [::1]), got "${rawAddress}"`);
  }
  const dataDir = env['STIGMER_DATA_DIR'];
  if (!dataDir) throw new EnvError('STIGMER_DATA_DIR is not set; expected the directory to keep the store in');
  let leaseMs = DEFAULT_LEASE_MS;
  const rawLease = env['STIGMER_LEASE_MS'];
  if (rawLease !== undefined && rawLease !== '') {
    leaseMs = /^\d+$/.test(rawLease) ? Number(rawLease) : NaN;
    if (!Number.isInteger(leaseMs) || leaseMs < 100 || leaseMs > 3_600_000) {
      throw new EnvError(`Expected STIGMER_LEASE_MS to be a whole number of milliseconds from 100 to 3600000, got "${rawLease}"`);
    }
  }
  return { address, dataDir: resolve(dataDir), leaseMs };
}


const out = (line: string): void => {
  process.stdout.write(`${line}\n`);
};
const err = (line: string): void => {
  process.stderr.write(`stigmer-server: ${line}\n`);
};

/** Run the server until a signal; returns the exit code. */
export async function runServer(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let cfg: ServerEnv;
  try {
    cfg = readServerEnv(env);
  } catch (e) {
    if (!(e instanceof EnvError)) throw e;
    err(e.message);
    return EXIT.usage;
  }

  const storeDir = join(cfg.dataDir, STORE_DIR);
  let store: Store;
  try {
    const opened = Store.open(storeDir, {
      onFatal: (e) => {
        // Nothing more may be acknowledged: what was acknowledged is on disk, the rest is not.
        err(`${e.message}; stopping`);
        process.exit(1);
      },
    });
    store = opened.store;
    const r = opened.report;
    out(
      `stigmer-server: store ${storeDir}: ${r.agents} agents, ${r.executions} executions` +
        (r.replayed ? `, ${r.replayed} log records replayed` : '') +
        (r.droppedBytes ? `, dropped a torn record of ${r.droppedBytes} bytes at the end of the log` : ''),
    );
  } catch (e) {
    if (e instanceof StoreLockedError || e instanceof StoreCorruptError) {
      err(e.message);
      return EXIT.taskFailed;
    }
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM' || code === 'ENOTDIR' || code === 'EROFS' || code === 'EEXIST') {
      err(`STIGMER_DATA_DIR=${cfg.dataDir} cannot hold the store: ${(e as Error).message}`);
      return EXIT.usage;
    }
    throw e;
  }

  const service = new Service(store, { leaseMs: cfg.leaseMs, log: (l) => out(`stigmer-server: ${l}`) });
  const api = createApiServer({ service, version: stigmerVersion(), startedAt: Date.now(), log: err });
  const bindHost = cfg.address.host === 'localhost' ? '127.0.0.1' : cfg.address.host;

  try {
    await new Promise<void>((ok, fail) => {
      api.server.once('error', fail);
      api.server.listen(cfg.address.port, bindHost, () => {
        api.server.off('error', fail);
        ok();
      });
    });
  } catch (e) {
    service.stop();
    await store.close();
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'EADDRINUSE' ? 'the port is already in use' : (e as Error).message;
    err(`cannot listen on ${formatAddress(cfg.address)}: ${why}`);
    return code === 'EADDRNOTAVAIL' ? EXIT.usage : EXIT.taskFailed;
  }
  const port = (api.server.address() as AddressInfo).port;
  out(`stigmer-server listening on ${formatAddress({ host: cfg.address.host, port })}`);

  const signal = await new Promise<NodeJS.Signals>((ok) => {
    for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.once(s, () => ok(s));
  });
  out(`stigmer-server: ${signal} received, stopping`);
  // A second signal skips the grace period.
  const force = (): void => {
    api.server.closeAllConnections();
  };
  for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.once(s, force);

  const closed = new Promise<void>((ok) => api.server.close(() => ok()));
  api.endStreams();
  service.stop();
  api.server.closeIdleConnections();
  const grace = setTimeout(force, SHUTDOWN_GRACE_MS);
  await closed;
  clearTimeout(grace);
  await store.close();
  out('stigmer-server: stopped');
  return EXIT.ok;
}
