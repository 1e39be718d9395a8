/** Listening and closing helpers shared by the local servers: loopback only, free ports, no dangling sockets. */
import type { Server } from "node:http";

/** The only interface the local runtime binds: nothing is reachable from another machine. */
export const LOOPBACK = "127.0.0.1";

/** Starts `server` on `port` (0 = any free port) on the loopback interface and returns the bound port. */
export function listen(server: Server, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => reject(error);
    server.once("error", onError);
    server.listen(port, LOOPBACK, () => {
      server.off("error", onError);
      resolve(boundPort(server));
    });
  });
}

/** The port a listening server is bound to. */
export function boundPort(server: Server): number {
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("server is not listening on a TCP port");
  return address.port;
}

/** `http://127.0.0.1:<port>` of a listening server. */
export function urlOf(server: Server): string {
  return `http://${LOOPBACK}:${boundPort(server)}`;
}

/**
 * Closes a server and its keep-alive connections (SDK clients keep sockets open, which would otherwise hold
 * `close` until they time out and keep the process alive). `close` is the server's own, possibly wrapped, close.
 */
export function closeServer(
  server: Server,
  close: (cb: (err?: Error) => void) => void = (cb) => server.close(cb),
): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!server.listening) {
      resolve();
      return;
    }
    close((error) =>
      error && (error as NodeJS.ErrnoException).code !== "ERR_SERVER_NOT_RUNNING" ? reject(error) : resolve(),
    );
    server.closeIdleConnections();
    setImmediate(() => server.closeAllConnections());
  });
}
