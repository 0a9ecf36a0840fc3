// A small Server-Sent Events parser, following the WHATWG "event stream interpretation" rules.
//
// EventSource can only GET, and /chat is a POST, so the page reads the fetch body itself.
// Network chunks may split anywhere: inside a line, between "\r" and "\n", even inside a UTF-8
// character; the parser keeps the unfinished part until the next chunk.

const BOM = "\uFEFF";

/** Parses decoded text into events: {event, data, id}. Comments and `retry` are dropped. */
export class SSEParser {
  constructor() {
    this.buffer = "";
    this.data = [];
    this.eventType = "";
    this.lastEventId = "";
    this.skipLF = false; // the previous chunk ended in "\r": a leading "\n" is the same break
    this.atStart = true;
  }

  /** Feeds a chunk of text; returns the events it completed, in order. */
  feed(text) {
    if (!text) return [];
    if (this.skipLF) {
      this.skipLF = false;
      if (text[0] === "\n") text = text.slice(1);
    }
    if (this.atStart && text) {
      this.atStart = false;
      if (text.startsWith(BOM)) text = text.slice(1);
    }
    let buffer = this.buffer + text;
    const events = [];
    let start = 0;
    for (let i = 0; i < buffer.length; i++) {
      const ch = buffer[i];
      if (ch !== "\n" && ch !== "\r") continue;
      this.processLine(buffer.slice(start, i), events);
      if (ch === "\r") {
        if (i + 1 === buffer.length) this.skipLF = true;
        else if (buffer[i + 1] === "\n") i++;
      }
      start = i + 1;
    }
    this.buffer = buffer.slice(start);
    return events;
  }

  /** Ends the stream: an event without its closing blank line is discarded, per the spec. */
  end() {
    this.buffer = "";
    this.data = [];
    this.eventType = "";
    return [];
  }

  processLine(line, events) {
    if (line === "") {
      this.dispatch(events);
      return;
    }
    if (line[0] === ":") return; // a comment, e.g. ": keep-alive"
    const colon = line.indexOf(":");
    let field = line;
    let value = "";
    if (colon >= 0) {
      field = line.slice(0, colon);
      value = line.slice(colon + 1);
      if (value[0] === " ") value = value.slice(1);
    }
    switch (field) {
      case "data":
        this.data.push(value);
        break;
      case "event":
        this.eventType = value;
        break;
      case "id":
        if (!value.includes("\0")) this.lastEventId = value;
        break;
      default: // retry and unknown fields: nothing to do for a fetch-based reader
        break;
    }
  }

  dispatch(events) {
    const data = this.data;
    const type = this.eventType;
    this.data = [];
    this.eventType = "";
    if (data.length === 0) return;
    events.push({ event: type || "message", data: data.join("\n"), id: this.lastEventId });
  }
}

/**
 * Reads a fetch body as SSE events, yielding the events of each network chunk as one array (so
 * the page renders once per chunk). Decoding with `stream: true` keeps a UTF-8 sequence split
 * across chunks until its last byte arrives.
 */
export async function* readEventBatches(body) {
  const reader = body.getReader();
  const decoder = new TextDecoder("utf-8");
  const parser = new SSEParser();
  let finished = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        finished = true;
        yield parser.feed(decoder.decode());
        yield parser.end();
        return;
      }
      yield parser.feed(decoder.decode(value, { stream: true }));
    }
  } finally {
    // Leaving early (the caller stopped reading) must close the response, not just unlock it.
    if (!finished) reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}
