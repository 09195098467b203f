/** A request written on a socket byte for byte, for the API tests that need the wire as a client writes it. */
import { connect } from "node:net";

/** Write `request` as written (no URL clean-up by a client) on one connection; the status and body once the server closes it. */
export function raw(port: number, request: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => socket.write(request));
    let text = "";
    socket.on("data", (data) => {
      text += data.toString("utf8");
    });
    socket.on("error", reject);
    socket.on("end", () => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
      resolve({ status, body: text.slice(text.indexOf("\r\n\r\n") + 4) });
    });
  });
}
