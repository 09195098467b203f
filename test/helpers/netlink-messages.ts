/** Every message of a datagram as an object, for tests that play the kernel or read golden bytes. */
import { MessageCursor, type NetlinkMessage } from "../../src/netlink/message.ts";

export function decodeMessages(bytes: Uint8Array): NetlinkMessage[] {
  const c = new MessageCursor();
  c.reset(bytes);
  const out: NetlinkMessage[] = [];
  while (c.next()) out.push(c.message());
  return out;
}
