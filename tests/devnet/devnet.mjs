// Starts the AT Protocol development network (PLC, PDS, AppView) on loopback for the tests,
// creates the accounts asked for, prints one JSON line (URLs, accounts with DID and password),
// then runs until SIGTERM, SIGINT or the end of its standard input (its parent is gone).
//
//   DEVNET_HOME=<install folder> DB_POSTGRES_URL=postgresql://... REDIS_HOST=127.0.0.1:6379 \
//     node devnet.mjs [handle ...]          (default: alice.test bob.test; the tests add carol.test)
//
// DEVNET_HOME is the folder `tests/devnet/install.sh` prints; the script runs on its Node 22.
// DB_POSTGRES_URL names a database of the network's own (the AppView, bsync and Ozone create
// their schemas there); REDIS_HOST (default 127.0.0.1:6379) is handed to the AppView.

import dns from 'node:dns';
import net from 'node:net';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const LOOPBACK = '127.0.0.1';

// Every server of the network calls listen(port) with no host, which binds all interfaces:
// keep them on loopback. Clients reach them as "localhost": resolve that to IPv4 first.
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number' || (typeof args[0] === 'string' && /^\d+$/.test(args[0]))) {
    if (args.length === 1 || typeof args[1] === 'function') args.splice(1, 0, LOOPBACK);
  } else if (args[0] && typeof args[0] === 'object' && !args[0].path && !args[0].host) {
    args[0] = { ...args[0], host: LOOPBACK };
  }
  return listen.apply(this, args);
};
dns.setDefaultResultOrder('ipv4first');

const home = process.env.DEVNET_HOME;
if (!home) fail('DEVNET_HOME is not set (the folder tests/devnet/install.sh prints)');
if (!process.env.DB_POSTGRES_URL) fail('DB_POSTGRES_URL is not set (a database of the network\'s own)');
process.env.REDIS_HOST ??= `${LOOPBACK}:6379`;
process.env.DB_POSTGRES_SCHEMA ??= 'devnet';
process.env.LOG_ENABLED ??= 'false';

const require = createRequire(path.join(home, 'package.json'));
const devEnv = await import(pathToFileURL(require.resolve('@atproto/dev-env')).href);

const handles = process.argv.slice(2).length ? process.argv.slice(2) : ['alice.test', 'bob.test'];
const network = await devEnv.TestNetwork.create({});
const accounts = [];
for (const handle of handles) accounts.push(await createAccount(network.pds.url, handle));
await network.processAll();

console.log(JSON.stringify({
  plc: onLoopback(network.plc.url),
  pds: onLoopback(network.pds.url),
  appview: onLoopback(network.bsky.url),
  accounts,
}));

let closing = false;
async function close() {
  if (closing) return;
  closing = true;
  try {
    await network.close();
  } finally {
    process.exit(0);
  }
}
process.on('SIGTERM', close);
process.on('SIGINT', close);
process.stdin.on('end', close);
process.stdin.on('error', close);
process.stdin.resume();

async function createAccount(pds, handle) {
  const password = `devnet-${handle}-password`;
  const response = await fetch(`${pds}/xrpc/com.atproto.server.createAccount`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ handle, password, email: `${handle}@devnet.invalid` }),
  });
  const body = await response.json();
  if (!response.ok) fail(`createAccount ${handle}: ${response.status} ${JSON.stringify(body)}`);
  return { handle: body.handle, did: body.did, password };
}

function onLoopback(url) {
  return url.replace('//localhost:', `//${LOOPBACK}:`);
}

function fail(message) {
  console.error(`devnet: ${message}`);
  process.exit(2);
}
