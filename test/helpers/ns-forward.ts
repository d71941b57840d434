/**
 * Runs inside a test host's network namespace. The parent hands over a listening socket that was
 * bound in its own namespace; each connection accepted on it is piped to 127.0.0.1:<port> here,
 * so a test in the root namespace can call the API of a node living in the namespace.
 */
import net from 'node:net';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  process.stderr.write(`ns-forward: bad port ${process.argv[2]}\n`);
  process.exit(2);
}

process.once('message', (_msg, handle) => {
  const server = handle as net.Server;
  server.on('connection', (client) => {
    const upstream = net.connect(port, '127.0.0.1');
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream).pipe(client);
  });
  process.send?.('ready');
});
process.on('disconnect', () => process.exit(0));
