import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { z } from 'zod';
import type { BackendSchemaContext } from '../../core/config/backend-schema.js';
import {
  commonBackendFields,
  nonEmpty,
  reportIssue,
  seconds,
  serverUrl,
  toMs,
} from '../../core/config/config-fields.js';

// Loaded by core's configuration loader, so it imports only zod and core.
// It reads no file: the kubeconfig, the CA and the service-account files are
// read when the backend starts (kubernetes-connection.ts), and the token
// file again before every request, because projected tokens rotate.

/** Where a pod's service-account token, CA and namespace are mounted. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/**
 * How the backend finds the API server: `in-cluster` (the pod's service
 * account and `KUBERNETES_SERVICE_HOST`/`_PORT`), `kubeconfig` (a context of
 * a kubeconfig file, as kubectl), or `direct` (`api_server` with an optional
 * token file and CA).
 */
export type KubernetesConnectionMode = 'in-cluster' | 'kubeconfig' | 'direct';

/**
 * `backend = "kubernetes"`: validates `backend_config` and decides how to
 * connect. Without any setting it runs in-cluster when
 * `KUBERNETES_SERVICE_HOST` is set, else from `$KUBECONFIG` or
 * `~/.kube/config`, like kubectl.
 *
 * @example
 * kubernetesConfigSchema(context).parse({ namespace: 'shop', port_name: 'grpc' }).mode; // 'in-cluster' inside a pod
 */
export const kubernetesConfigSchema = (context: BackendSchemaContext) =>
  z
    .strictObject({
      ...commonBackendFields,
      namespace: nonEmpty.optional(),
      portName: nonEmpty.optional(),
      inCluster: z.boolean().optional(),
      kubeconfig: nonEmpty.optional(),
      context: nonEmpty.optional(),
      apiServer: serverUrl.optional(),
      tokenFile: nonEmpty.optional(),
      caFile: nonEmpty.optional(),
      serviceAccountDir: nonEmpty.default(SERVICE_ACCOUNT_DIR),
      requestTimeout: seconds.default(10),
      watchTimeout: z.number().int().min(1).max(3600).default(300),
      pageSize: z.number().int().min(1).max(10_000).default(500),
    })
    .transform((raw, ctx) => {
      const { env } = context;
      if (raw.apiServer !== undefined && !/^https?:\/\/[^/]+/i.test(raw.apiServer)) {
        reportIssue(ctx, ['apiServer'], 'an https:// (or http://) URL of the API server', raw.apiServer);
      }
      if (raw.inCluster === true && (raw.kubeconfig !== undefined || raw.context !== undefined)) {
        reportIssue(
          ctx,
          [raw.kubeconfig !== undefined ? 'kubeconfig' : 'context'],
          'no kubeconfig setting with in_cluster = true (the pod service account is used)',
        );
      }
      let mode: KubernetesConnectionMode;
      if (raw.inCluster === true) mode = 'in-cluster';
      else if (raw.inCluster === false || raw.kubeconfig !== undefined || raw.context !== undefined)
        mode = 'kubeconfig';
      else if (raw.apiServer !== undefined) mode = 'direct';
      else mode = env.KUBERNETES_SERVICE_HOST ? 'in-cluster' : 'kubeconfig';

      let inClusterServer: string | undefined;
      if (mode === 'in-cluster' && raw.apiServer === undefined) {
        const host = env.KUBERNETES_SERVICE_HOST;
        const port = env.KUBERNETES_SERVICE_PORT || '443';
        if (!host) {
          reportIssue(
            ctx,
            ['inCluster'],
            'a pod environment (KUBERNETES_SERVICE_HOST is not set): give api_server, or a kubeconfig outside a cluster',
            raw.inCluster,
          );
        } else inClusterServer = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
      }

      // kubectl's order: the configured file, then every file of $KUBECONFIG, then ~/.kube/config.
      const kubeconfigFiles =
        raw.kubeconfig !== undefined
          ? [raw.kubeconfig]
          : env.KUBECONFIG
            ? env.KUBECONFIG.split(delimiter).filter((p) => p.length > 0)
            : [join(env.HOME || homedir(), '.kube', 'config')];

      return {
        serviceType: raw.serviceType,
        mode,
        /** The Kubernetes namespace of a query that names none (see the docs' namespace rule). */
        namespace: raw.namespace,
        /** The slice port to use, by name; undefined: the only port, else `grpc`, else `http`. */
        portName: raw.portName,
        /** The API server: `api_server`, or in a pod `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`. */
        apiServer: raw.apiServer ?? inClusterServer,
        kubeconfigFiles,
        kubeconfigFromSettings: raw.kubeconfig !== undefined,
        context: raw.context,
        tokenFile: raw.tokenFile ?? (mode === 'in-cluster' ? join(raw.serviceAccountDir, 'token') : undefined),
        caFile: raw.caFile ?? (mode === 'in-cluster' ? join(raw.serviceAccountDir, 'ca.crt') : undefined),
        /** The pod's own namespace file (in-cluster). */
        namespaceFile: mode === 'in-cluster' ? join(raw.serviceAccountDir, 'namespace') : undefined,
        requestTimeoutMs: toMs(raw.requestTimeout),
        /** Asked of the server as `timeoutSeconds`: a watch ends (and resumes) at least this often. */
        watchTimeoutS: raw.watchTimeout,
        pageSize: raw.pageSize,
        /** A quiet watch is checked (one GET /version) after this long without a byte; also the longest retry delay. */
        idleCheckMs: context.refreshIntervalMs,
      };
    });

/** The `kubernetes` backend's settings (durations in ms). */
export type KubernetesSettings = z.output<ReturnType<typeof kubernetesConfigSchema>>;
