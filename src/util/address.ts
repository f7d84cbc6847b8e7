/**
 * `host:port` addresses, as `STIGMER_SERVER_ADDRESS` and `backend.local.endpoint` write them:
 * `localhost:50051`, `127.0.0.1:50051`, `[::1]:50051`.
 */

export interface Address {
  /** the host as written, without IPv6 brackets */
  host: string;
  port: number;
}

/**
 * Parse `host:port`; undefined when it is not one. The host is a name or IPv4 address (no
 * white space, `:`, `/`, `@`, `?`, `#`), or an IPv6 address in brackets. Port 0 is allowed
 * (listen on any free port): a caller that connects checks `port > 0`.
 */
export function parseAddress(text: string): Address | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:/?#@[\]]+)):(\d{1,5})$/.exec(text.trim());
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  return { host: (m[1] ?? m[2])!, port };
}

/** "127.0.0.1:80", "[::1]:80", "localhost:80" (a probe or any `{ host, port }` will do) */
export function formatAddress(a: Address): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** True for names that stay on this machine: localhost, 127.0.0.0/8, ::1. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
