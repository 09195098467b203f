/** The Server-Sent Events text format, as GET /events writes it (id, event, data lines; blank line ends one). */

/** One parsed event block. */
interface Block {
  id: string | null;
  type: string;
  data: string;
}

/**
 * Splits SSE text into complete blocks; returns them and the unfinished rest. A CR that ends the text is kept in the
 * rest as it is: it may be the first half of a CRLF split between two reads, which read as two line ends would
 * end the event in its middle.
 */
export function parseBlocks(text: string): { blocks: Block[]; rest: string } {
  const blocks: Block[] = [];
  const held = text.endsWith("\r") ? "\r" : "";
  const parts = (held === "" ? text : text.slice(0, -1)).replace(/\r\n?/g, "\n").split("\n\n");
  const rest = (parts.pop() ?? "") + held;
  for (const part of parts) {
    const block: Block = { id: null, type: "message", data: "" };
    const data: string[] = [];
    for (const line of part.split("\n")) {
      if (line === "" || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const key = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (key === "id") block.id = value;
      else if (key === "event") block.type = value;
      else if (key === "data") data.push(value);
    }
    block.data = data.join("\n");
    if (block.id !== null || data.length > 0) blocks.push(block);
  }
  return { blocks, rest };
}

