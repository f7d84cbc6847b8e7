/**
 * Framing of the two streaming formats the providers use: NDJSON (Ollama) and server-sent events
 * (Anthropic, OpenAI). Both read a byte stream and yield frames as soon as they are complete, so
 * a token is handed on the moment its line arrives.
 */

/**
 * Lines of a byte stream, without their `\n` / `\r\n`; a last line without newline is yielded too.
 * With `bareCr` a lone `\r` ends a line as well (server-sent events allow all three).
 */
export async function* readLines(body: AsyncIterable<Uint8Array | string>, opts: { bareCr?: boolean } = {}): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  const eol = opts.bareCr ? /\r\n|\r|\n/g : /\r?\n/g;
  let buffer = '';
  for await (const chunk of body) {
    buffer += typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    let start = 0;
    eol.lastIndex = 0;
    for (let m = eol.exec(buffer); m; m = eol.exec(buffer)) {
      // A lone "\r" at the very end may be the first half of "\r\n": wait for more.
      if (m[0] === '\r' && eol.lastIndex === buffer.length) break;
      yield buffer.slice(start, m.index);
      start = eol.lastIndex;
    }
    buffer = buffer.slice(start);
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
 * Server-sent events as the WHATWG spec frames them: lines end in `\r\n`, `\n` or `\r`; fields
 * until a blank line, `:` comments ignored, several `data:` lines joined; `id:` and `retry:` are
 * not used and ignored. An event not closed by a blank line before the stream ends is dropped, as
 * the spec says, which is how a cut stream shows up. Serves the LLM providers and stigmer-server's
 * event stream alike.
 */
export async function* readSse(body: AsyncIterable<Uint8Array | string>): AsyncGenerator<SseEvent> {
  let event = '';
  let data: string[] = [];
  for await (const line of readLines(body, { bareCr: true })) {
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
