// The test Kubernetes API server (test/support/kubernetes/api-server-process.mjs,
// the one the kubernetes backend's tests use and that kubectl and
// @kubernetes/client-node were checked against) for the convergence
// benchmark: started in a child process on a free loopback port over plain
// HTTP with one bearer token, and driven through its REST API the way the
// EndpointSlice controller writes slices.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canConnect, findFreePort } from '../../dist/core/index.js';
import { ROOT } from './processes.mjs';

const TOKEN = 'bench-token';

function call(port, method, path, body) {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          if (res.statusCode >= 300) reject(new Error(`${method} ${path}: ${res.statusCode} ${Buffer.concat(chunks)}`));
          else resolve(JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null'));
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/**
 * `{ backendConfig, put(name, service, addresses, port), close() }`: a running
 * test API server and the `backend_config` that points the kubernetes backend at it.
 */
export async function startKubernetesApi() {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-bench-k8s-'));
  const port = await findFreePort();
  const options = {
    port,
    stateFile: join(dir, 'state.json'),
    users: { admin: { tokens: [TOKEN], rules: [{ verbs: ['*'], namespaces: '*' }] } },
    bookmarkIntervalMs: 60_000,
  };
  const child = spawn(process.execPath, [join(ROOT, 'test/support/kubernetes/api-server-process.mjs')], {
    env: { ...process.env, API_SERVER_OPTIONS: JSON.stringify(options) },
    stdio: 'ignore',
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const deadline = Date.now() + 15_000;
  while (!(await canConnect('127.0.0.1', port, 200))) {
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error('the test Kubernetes API server did not start');
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, TOKEN);
  const base = '/apis/discovery.k8s.io/v1/namespaces/bench/endpointslices';
  const known = new Set();
  return {
    backendConfig: { apiServer: `http://127.0.0.1:${port}`, tokenFile, namespace: 'bench' },
    /** Writes slice `name` of `service` with these IPs, all on `port` (created or replaced). */
    put: async (name, service, ips, slicePort) => {
      const slice = {
        kind: 'EndpointSlice',
        apiVersion: 'discovery.k8s.io/v1',
        metadata: { name, namespace: 'bench', labels: { 'kubernetes.io/service-name': service } },
        addressType: 'IPv4',
        ports: [{ name: 'grpc', port: slicePort, protocol: 'TCP' }],
        endpoints: ips.map((ip) => ({
          addresses: [ip],
          conditions: { ready: true, serving: true, terminating: false },
        })),
      };
      if (known.has(name)) await call(port, 'PUT', `${base}/${name}`, slice);
      else await call(port, 'POST', base, slice);
      known.add(name);
    },
    close: async () => {
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
