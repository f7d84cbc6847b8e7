/**
 * Framing of the two streaming formats the providers use: NDJSON (Ollama) and server-sent events
 * (Anthropic, OpenAI). Both read a byte stream and yield frames as soon as they are complete, so
 * a token is handed on the moment its line arrives.
 */

/** Lines of a byte stream, without their `\n` / `\r\n`; a last line without newline is yielded too. */
export async function* readLines(body: AsyncIterable<Uint8Array | string>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of body) {
    buffer += typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    let nl = buffer.indexOf('\n');
    while (nl >= 0) {
      const line = buffer.endsWith('\r', nl) ? buffer.slice(0, nl - 1) : buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      yield line;
      nl = buffer.indexOf('\n');
    }
  }
  buffer += decoder.decode();
  if (buffer.length > 0) yield buffer.endsWith('\r') ? buffer.slice(0, -1) : buffer;
}

export interface SseEvent {
  /** the `event:` field; "message" when absent */
  event: string;
  /** the `data:` lines joined with `\n` */
  data: string;
}

/**
 * Server-sent events as the WHATWG spec frames them: fields until a blank line, `:` comments
 * ignored, several `data:` lines joined. An event not closed by a blank line before the stream
 * ends is dropped, as the spec says, which is how a cut stream shows up.
 */
export async function* readSse(body: AsyncIterable<Uint8Array | string>): AsyncGenerator<SseEvent> {
  let event = '';
  let data: string[] = [];
  for await (const line of readLines(body)) {
    if (line === '') {
      if (data.length > 0) yield { event: event || 'message', data: data.join('\n') };
      event = '';
      data = [];
      continue;
    }
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
}
