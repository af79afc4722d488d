// Talking to the jetsuite process that serves the page: JSON endpoints, server-sent events
// (EventSource reconnects by itself) and the NDJSON answer of POST /query.

export async function getJSON(path) {
  const r = await fetch(path, { headers: { Accept: 'application/json' } });
  if (!r.ok) {
    let msg = `${r.status} ${r.statusText}`;
    try {
      msg = (await r.json()).error || msg;
    } catch {
      // not JSON: keep the status
    }
    throw new Error(msg);
  }
  return r.json();
}

export async function postJSON(path, body) {
  const r = await fetch(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body ?? {}) });
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(data.error || `${r.status} ${r.statusText}`);
  return data;
}

// events opens an event stream and calls handlers[name](data) for each event; onState gets
// 'open' or 'reconnecting'. It returns the function that closes it.
export function events(path, handlers, onState) {
  const es = new EventSource(path);
  for (const [name, fn] of Object.entries(handlers)) {
    es.addEventListener(name, (e) => fn(JSON.parse(e.data)));
  }
  es.onopen = () => onState && onState('open');
  es.onerror = () => onState && onState('reconnecting');
  return () => es.close();
}

// query runs a pull or push query through POST /query: onHeader(columns), then onRow(object)
// per row, as the server sends them. It resolves when the query ends (a pull query by itself,
// a push query at LIMIT or when signal aborts).
export async function query(sql, { signal, limit, onHeader, onRow }) {
  const r = await fetch('/query', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ sql, limit: limit || 0 }),
    signal,
  });
  if (!r.ok) {
    const data = await r.json().catch(() => ({}));
    throw new Error(data.error || `${r.status} ${r.statusText}`);
  }
  const reader = r.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  for (;;) {
    let chunk;
    try {
      chunk = await reader.read();
    } catch (e) {
      if (signal && signal.aborted) return;
      throw e;
    }
    if (chunk.done) break;
    buf += dec.decode(chunk.value, { stream: true });
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (!line) continue;
      const obj = JSON.parse(line);
      if (obj.columns && Object.keys(obj).length === 1) onHeader(obj.columns);
      else if (obj.error && Object.keys(obj).length === 1) throw new Error(obj.error);
      else onRow(obj);
    }
  }
}
