// A Kubernetes API server for tests, in its own process (so a test can
// SIGSTOP it, kill it, and start it again on the same port with the same
// state). It serves what a client of discovery.k8s.io/v1 EndpointSlices
// reads: the discovery documents (/api, /apis, /apis/discovery.k8s.io/v1),
// list (label and field selectors, limit/continue pages of one consistent
// snapshot) and watch (resourceVersion resume, synthetic ADDED events for a
// watch from "now", bookmarks, timeoutSeconds, `410 Gone` once the history
// was compacted) over chunked JSON lines, create/update/delete so tests
// change slices through the API itself, bearer tokens and client
// certificates over TLS, and RBAC refusals (403 with the Status body the
// real server sends). It is proven honest against kubectl and
// @kubernetes/client-node (test/integration/kubernetes/api-server-honesty.spec.ts)
// before any switchyard test relies on it. One file on purpose: it is the
// whole server, read top to bottom.
//
// Options come as JSON in API_SERVER_OPTIONS:
//   { port, stateFile, tls?: { cert, key, ca }, users: { name: { tokens?: [..], rules: [{ verbs, namespaces }] } },
//     bookmarkIntervalMs?, goneAs?: 'event' | 'status' }
// Test controls live under /__test/ (admin user only). Exits when its parent dies.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { randomUUID } from 'node:crypto';

const options = JSON.parse(process.env.API_SERVER_OPTIONS ?? '{}');
const GROUP = 'discovery.k8s.io';
const GROUP_VERSION = `${GROUP}/v1`;
const RESOURCE = 'endpointslices';
const ADMIN = 'admin';

// ------------------------------------------------------------------ state

/** Everything that survives a restart: objects, history, users. */
let state = {
  rv: 100,
  compactedRv: 100,
  /** key "namespace/name" -> object */
  objects: {},
  /** { rv, type: ADDED|MODIFIED|DELETED, key, object, previous } */
  history: [],
  users: options.users ?? {},
};
try {
  state = JSON.parse(readFileSync(options.stateFile, 'utf8'));
} catch {
  // first start
}
const requests = [];
/** Open watches: { res, user, namespace, selector, fields, send(event), end() } */
const watches = new Set();

function save() {
  const tmp = `${options.stateFile}.tmp`;
  writeFileSync(tmp, JSON.stringify(state));
  renameSync(tmp, options.stateFile);
}

// ------------------------------------------------------------------ helpers

function status(code, reason, message, details) {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, details, code };
}

function send(res, code, body) {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      try {
        resolve(chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined);
      } catch (error) {
        reject(error);
      }
    });
    req.on('error', reject);
  });
}

/** Equality-based label selectors: `a=b`, `a==b`, `a!=b`, `a`, `!a`, comma-separated. */
function parseLabelSelector(text) {
  if (!text) return () => true;
  const tests = text.split(',').map((term) => {
    const t = term.trim();
    let m;
    if ((m = /^([^=!]+)!=(.*)$/.exec(t))) return (labels) => labels[m[1].trim()] !== m[2].trim();
    if ((m = /^([^=!]+)==?(.*)$/.exec(t))) return (labels) => labels[m[1].trim()] === m[2].trim();
    if (t.startsWith('!')) return (labels) => !(t.slice(1) in labels);
    return (labels) => t in labels;
  });
  return (object) => tests.every((test) => test(object?.metadata?.labels ?? {}));
}

/** Field selectors kubectl sends: metadata.name and metadata.namespace (=, ==, !=). */
function parseFieldSelector(text) {
  if (!text) return () => true;
  const tests = text.split(',').map((term) => {
    const m = /^([^=!]+)(!=|==|=)(.*)$/.exec(term.trim());
    if (!m) return () => false;
    const [, field, op, value] = m;
    const get = (o) =>
      field === 'metadata.name' ? o.metadata.name : field === 'metadata.namespace' ? o.metadata.namespace : undefined;
    return op === '!=' ? (o) => get(o) !== value : (o) => get(o) === value;
  });
  return (object) => tests.every((test) => test(object));
}

function authenticate(req) {
  const header = req.headers.authorization ?? '';
  if (header.startsWith('Bearer ')) {
    const token = header.slice(7).trim();
    for (const [name, user] of Object.entries(state.users)) if ((user.tokens ?? []).includes(token)) return name;
    return undefined;
  }
  const cert = req.socket.getPeerCertificate?.();
  if (req.socket.authorized && cert?.subject?.CN) return cert.subject.CN;
  return undefined;
}

function allowed(user, verb, namespace) {
  if (user === ADMIN) return true;
  return (state.users[user]?.rules ?? []).some(
    (r) =>
      (r.verbs.includes('*') || r.verbs.includes(verb)) &&
      (r.namespaces === '*' || (namespace !== undefined && r.namespaces.includes(namespace))),
  );
}

function forbidden(user, verb, namespace) {
  const where = namespace === undefined ? 'at the cluster scope' : `in the namespace "${namespace}"`;
  return status(
    403,
    'Forbidden',
    `${RESOURCE}.${GROUP} is forbidden: User "${user}" cannot ${verb} resource "${RESOURCE}" in API group "${GROUP}" ${where}`,
    { group: GROUP, kind: RESOURCE },
  );
}

function withRv(object, rv) {
  return { ...object, metadata: { ...object.metadata, resourceVersion: String(rv) } };
}

/** The objects as they were at `rv`, rebuilt by undoing later history; undefined when history does not reach back. */
function snapshotAt(rv) {
  if (rv < state.compactedRv) return undefined;
  const objects = { ...state.objects };
  for (let i = state.history.length - 1; i >= 0 && state.history[i].rv > rv; i--) {
    const entry = state.history[i];
    if (entry.type === 'ADDED') delete objects[entry.key];
    else objects[entry.key] = entry.previous;
  }
  return objects;
}

function record(type, key, object, previous) {
  state.rv += 1;
  const stored = withRv(object, state.rv);
  if (type === 'DELETED') delete state.objects[key];
  else state.objects[key] = stored;
  state.history.push({ rv: state.rv, type, key, object: stored, previous });
  save();
  for (const watch of watches) watch.notify(type, stored, previous);
  return stored;
}

// ------------------------------------------------------------------ discovery documents

function discovery(path, res, port) {
  const docs = {
    '/api': {
      kind: 'APIVersions',
      versions: ['v1'],
      serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: `127.0.0.1:${port}` }],
    },
    '/api/v1': { kind: 'APIResourceList', groupVersion: 'v1', resources: [] },
    '/apis': {
      kind: 'APIGroupList',
      apiVersion: 'v1',
      groups: [
        {
          name: GROUP,
          versions: [{ groupVersion: GROUP_VERSION, version: 'v1' }],
          preferredVersion: { groupVersion: GROUP_VERSION, version: 'v1' },
        },
      ],
    },
    [`/apis/${GROUP}`]: {
      kind: 'APIGroup',
      apiVersion: 'v1',
      name: GROUP,
      versions: [{ groupVersion: GROUP_VERSION, version: 'v1' }],
      preferredVersion: { groupVersion: GROUP_VERSION, version: 'v1' },
    },
    [`/apis/${GROUP_VERSION}`]: {
      kind: 'APIResourceList',
      apiVersion: 'v1',
      groupVersion: GROUP_VERSION,
      resources: [
        {
          name: RESOURCE,
          singularName: 'endpointslice',
          namespaced: true,
          kind: 'EndpointSlice',
          verbs: ['create', 'delete', 'get', 'list', 'update', 'watch'],
        },
      ],
    },
    '/version': {
      major: '1',
      minor: '30',
      gitVersion: 'v1.30.0-switchyard-test',
      platform: 'linux/amd64',
    },
  };
  if (!(path in docs)) return false;
  send(res, 200, docs[path]);
  return true;
}

// ------------------------------------------------------------------ list and watch

function list(res, namespace, query) {
  const matches = parseLabelSelector(query.get('labelSelector'));
  const fields = parseFieldSelector(query.get('fieldSelector'));
  const limit = Number(query.get('limit') ?? 0);
  let rv = state.rv;
  let after = '';
  const token = query.get('continue');
  if (token) {
    try {
      ({ rv, after } = JSON.parse(Buffer.from(token, 'base64').toString('utf8')));
    } catch {
      return send(res, 400, status(400, 'BadRequest', 'continue key is not valid'));
    }
  }
  const objects = snapshotAt(rv);
  if (!objects) {
    return send(
      res,
      410,
      status(
        410,
        'Expired',
        'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.',
      ),
    );
  }
  const keys = Object.keys(objects)
    .filter((k) => k > after)
    .filter((k) => namespace === undefined || objects[k].metadata.namespace === namespace)
    .filter((k) => matches(objects[k]) && fields(objects[k]))
    .sort();
  const page = limit > 0 ? keys.slice(0, limit) : keys;
  const more = limit > 0 && keys.length > limit;
  const metadata = { resourceVersion: String(rv) };
  if (more) {
    metadata.continue = Buffer.from(JSON.stringify({ rv, after: page[page.length - 1] })).toString('base64');
    metadata.remainingItemCount = keys.length - limit;
  }
  send(res, 200, {
    kind: 'EndpointSliceList',
    apiVersion: GROUP_VERSION,
    metadata,
    items: page.map((k) => objects[k]),
  });
}

function watch(req, res, user, namespace, query) {
  const matches = parseLabelSelector(query.get('labelSelector'));
  const fields = parseFieldSelector(query.get('fieldSelector'));
  const selected = (o) =>
    o !== undefined && (namespace === undefined || o.metadata.namespace === namespace) && matches(o) && fields(o);
  const bookmarks = query.get('allowWatchBookmarks') === 'true';
  const timeoutS = Number(query.get('timeoutSeconds') ?? 1800);
  const from = query.get('resourceVersion');
  const fromRv = from === null || from === '' || from === '0' ? undefined : Number(from);
  if (fromRv !== undefined && fromRv < state.compactedRv && options.goneAs === 'status') {
    return send(res, 410, status(410, 'Expired', `too old resource version: ${fromRv} (${state.compactedRv})`));
  }
  res.writeHead(200, {
    'content-type': 'application/json',
    'transfer-encoding': 'chunked',
    'cache-control': 'no-cache',
  });
  res.flushHeaders();
  const write = (type, object) => res.write(`${JSON.stringify({ type, object })}\n`);
  const bookmark = () =>
    write('BOOKMARK', {
      kind: 'EndpointSlice',
      apiVersion: GROUP_VERSION,
      metadata: { resourceVersion: String(state.rv) },
    });
  let ended = false;
  const entry = {
    user,
    notify(type, object, previous) {
      const now = selected(type === 'DELETED' ? previous : object);
      const before = selected(previous);
      if (type === 'DELETED') {
        if (before) write('DELETED', object);
      } else if (now && before) write('MODIFIED', object);
      else if (now) write('ADDED', object);
      else if (before) write('DELETED', object);
    },
    end(how) {
      if (ended) return;
      ended = true;
      watches.delete(entry);
      clearInterval(bookmarkTimer);
      clearTimeout(timeoutTimer);
      if (how === 'gone') {
        write('ERROR', status(410, 'Expired', `too old resource version: ${from} (${state.compactedRv})`));
        res.end();
      } else if (how === 'cut') res.socket?.destroy();
      else {
        if (bookmarks) bookmark();
        res.end();
      }
    },
  };
  let bookmarkTimer;
  const timeoutTimer = setTimeout(() => entry.end('timeout'), timeoutS * 1000);
  if (bookmarks) bookmarkTimer = setInterval(bookmark, options.bookmarkIntervalMs ?? 1_000);
  req.on('close', () => entry.end('closed'));
  if (fromRv !== undefined && fromRv < state.compactedRv) return entry.end('gone');
  if (fromRv === undefined) {
    for (const key of Object.keys(state.objects).sort())
      if (selected(state.objects[key])) write('ADDED', state.objects[key]);
  } else {
    for (const h of state.history) if (h.rv > fromRv) entry.notify(h.type, h.object, h.previous);
  }
  watches.add(entry);
}

// ------------------------------------------------------------------ writes

async function write(req, res, verb, namespace, name) {
  let body;
  try {
    body = await readBody(req);
  } catch {
    return send(res, 400, status(400, 'BadRequest', 'the body is not JSON'));
  }
  if (verb === 'delete') {
    const key = `${namespace}/${name}`;
    const previous = state.objects[key];
    if (!previous) return send(res, 404, status(404, 'NotFound', `${RESOURCE}.${GROUP} "${name}" not found`));
    return send(res, 200, record('DELETED', key, previous, previous));
  }
  if (!body || body.kind !== 'EndpointSlice')
    return send(res, 400, status(400, 'BadRequest', 'expected an EndpointSlice'));
  const objectName =
    name ?? body.metadata?.name ?? `${body.metadata?.generateName ?? 'slice-'}${randomUUID().slice(0, 5)}`;
  const key = `${namespace}/${objectName}`;
  const previous = state.objects[key];
  if (verb === 'create' && previous) {
    return send(res, 409, status(409, 'AlreadyExists', `${RESOURCE}.${GROUP} "${objectName}" already exists`));
  }
  if (verb === 'update' && !previous)
    return send(res, 404, status(404, 'NotFound', `${RESOURCE}.${GROUP} "${objectName}" not found`));
  const asked = body.metadata?.resourceVersion;
  if (verb === 'update' && asked && asked !== previous.metadata.resourceVersion) {
    return send(
      res,
      409,
      status(
        409,
        'Conflict',
        `Operation cannot be fulfilled on ${RESOURCE}.${GROUP} "${objectName}": the object has been modified`,
      ),
    );
  }
  const metadata = {
    ...body.metadata,
    name: objectName,
    namespace,
    uid: previous?.metadata.uid ?? randomUUID(),
    creationTimestamp: previous?.metadata.creationTimestamp ?? new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    generation: (previous?.metadata.generation ?? 0) + 1,
  };
  delete metadata.generateName;
  const stored = record(
    previous ? 'MODIFIED' : 'ADDED',
    key,
    { ...body, apiVersion: GROUP_VERSION, metadata },
    previous,
  );
  send(res, previous ? 200 : 201, stored);
}

// ------------------------------------------------------------------ test controls

async function control(req, res, action) {
  const body = (await readBody(req).catch(() => undefined)) ?? {};
  switch (action) {
    case 'compact':
      state.compactedRv = state.rv;
      state.history = [];
      save();
      return send(res, 200, { compactedRv: state.compactedRv });
    case 'end-watches': {
      // how: 'timeout' (clean end), 'cut' (connection reset), 'gone' (ERROR 410 after compacting)
      const how = body.how ?? 'timeout';
      if (how === 'gone') {
        state.compactedRv = state.rv;
        state.history = [];
        save();
      }
      const ended = [...watches].filter((w) => body.user === undefined || w.user === body.user);
      ended.forEach((w) => w.end(how));
      return send(res, 200, { ended: ended.length });
    }
    case 'users':
      state.users = { ...state.users, ...body };
      save();
      return send(res, 200, state.users);
    case 'requests':
      return send(res, 200, requests);
    case 'watches':
      return send(
        res,
        200,
        [...watches].map((w) => ({ user: w.user })),
      );
    default:
      return send(res, 404, status(404, 'NotFound', `no test control ${action}`));
  }
}

// ------------------------------------------------------------------ routing

const COLLECTION = new RegExp(
  `^/apis/${GROUP_VERSION.replace('.', '\\.')}(?:/namespaces/([^/]+))?/${RESOURCE}(?:/([^/]+))?$`,
);

async function handle(req, res, port) {
  const url = new URL(req.url, 'http://x');
  const path = url.pathname.replace(/\/$/, '') || '/';
  const user = authenticate(req);
  const entry = {
    method: req.method,
    path,
    query: Object.fromEntries(url.searchParams),
    user: user ?? null,
    status: 0,
  };
  requests.push(entry);
  if (requests.length > 5_000) requests.shift();
  res.on('finish', () => (entry.status = res.statusCode));
  res.on('close', () => (entry.status ||= res.statusCode));
  if (['/healthz', '/livez', '/readyz'].includes(path)) {
    res.writeHead(200, { 'content-type': 'text/plain' });
    return res.end('ok');
  }
  if (path === '/version') return discovery(path, res, port);
  if (!user) return send(res, 401, status(401, 'Unauthorized', 'Unauthorized'));
  if (path.startsWith('/__test/')) {
    if (user !== ADMIN) return send(res, 403, status(403, 'Forbidden', 'test controls are for the admin user'));
    return control(req, res, path.slice('/__test/'.length));
  }
  if (req.method === 'GET' && discovery(path, res, port)) return undefined;
  const m = COLLECTION.exec(path);
  if (!m) return send(res, 404, status(404, 'NotFound', 'the server could not find the requested resource'));
  const [, namespace, name] = m;
  const watching = ['true', '1'].includes(url.searchParams.get('watch') ?? '');
  const verb =
    req.method === 'GET'
      ? name
        ? 'get'
        : watching
          ? 'watch'
          : 'list'
      : req.method === 'POST' && !name
        ? 'create'
        : req.method === 'PUT' && name
          ? 'update'
          : req.method === 'DELETE' && name
            ? 'delete'
            : undefined;
  if (!verb) return send(res, 405, status(405, 'MethodNotAllowed', `${req.method} is not supported here`));
  if (!allowed(user, verb, namespace)) return send(res, 403, forbidden(user, verb, namespace));
  if (verb === 'list') return list(res, namespace, url.searchParams);
  if (verb === 'watch') return watch(req, res, user, namespace, url.searchParams);
  if (verb === 'get') {
    const object = state.objects[`${namespace}/${name}`];
    return object
      ? send(res, 200, object)
      : send(res, 404, status(404, 'NotFound', `${RESOURCE}.${GROUP} "${name}" not found`));
  }
  if (!namespace) return send(res, 405, status(405, 'MethodNotAllowed', 'writes need a namespace'));
  return write(req, res, verb, namespace, name);
}

const server = options.tls
  ? createHttpsServer({
      cert: readFileSync(options.tls.cert),
      key: readFileSync(options.tls.key),
      ca: readFileSync(options.tls.ca),
      requestCert: true,
      rejectUnauthorized: false,
    })
  : createHttpServer();
server.on('request', (req, res) => {
  handle(req, res, options.port).catch((error) => {
    if (!res.headersSent) send(res, 500, status(500, 'InternalError', error.message));
    else res.destroy();
  });
});
server.listen(options.port, '127.0.0.1', () => console.log(`listening on ${options.port}`));
save();

const parent = process.ppid;
setInterval(() => process.ppid !== parent && process.exit(0), 500).unref();
process.on('SIGTERM', () => {
  for (const w of watches) w.end('cut');
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1_000).unref();
});
