/**
 * A server-sent-events reader (the `text/event-stream` framing): `event:` names the event,
 * `data:` lines are joined with newlines, a blank line dispatches, lines starting with `:` are
 * comments (heartbeats). `id:` and `retry:` are not used by stigmer-server and are ignored.
 */

export interface SseEvent {
  /** `message` when the frame has no `event:` line */
  event: string;
  data: string;
}

export async function* parseSse(source: AsyncIterable<string>): AsyncGenerator<SseEvent, void, undefined> {
  let buffer = '';
  let name = '';
  let data: string[] = [];
  for await (const piece of source) {
    buffer += piece;
    let start = 0;
    for (;;) {
      const nl = buffer.slice(start).search(/\r\n|\r|\n/);
      if (nl === -1) break;
      const end = start + nl;
      // A lone "\r" at the very end may be the first half of "\r\n": wait for more.
      if (buffer[end] === '\r' && end + 1 === buffer.length) break;
      const line = buffer.slice(start, end);
      start = end + (buffer[end] === '\r' && buffer[end + 1] === '\n' ? 2 : 1);
      if (line === '') {
        if (data.length > 0) yield { event: name || 'message', data: data.join('\n') };
        name = '';
        data = [];
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') name = value;
      else if (field === 'data') data.push(value);
    }
    buffer = buffer.slice(start);
  }
}
