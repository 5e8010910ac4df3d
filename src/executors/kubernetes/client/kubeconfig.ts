/**
 * Finds and loads the kubeconfig as kubectl does, with errors that say which file and what is
 * wrong (client-node's own `loadFromDefault` silently falls back to `http://localhost:8080`).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import type { Cluster } from '@kubernetes/client-node';
import { messageOf } from './http.js';

const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export interface LoadedKubeConfig {
  kc: KubeConfig;
  /** Where it came from, for messages: a file, or `in-cluster service account`. */
  source: string;
  /** The cluster's address without a trailing slash. */
  server: string;
  /** The context's namespace, if it names one. */
  namespace?: string;
}

/**
 * `file`, else the files in `KUBECONFIG` (merged; the first to set a value wins, as in
 * kubectl), else `~/.kube/config`, else the pod's service account. `context` overrides the
 * current context.
 */
export function loadKubeConfig(options: {
  kubeconfig?: string;
  context?: string;
  env?: NodeJS.ProcessEnv;
  home?: string;
}): LoadedKubeConfig {
  const env = options.env ?? process.env;
  const kc = new KubeConfig();
  let source: string;
  if (options.kubeconfig) {
    source = options.kubeconfig;
    loadFile(kc, options.kubeconfig);
  } else if (env.KUBECONFIG) {
    const files = env.KUBECONFIG.split(path.delimiter).filter((file) => file && fs.existsSync(file));
    if (files.length === 0) {
      throw new Error(`kubeconfig: none of the files in KUBECONFIG exists (${env.KUBECONFIG})`);
    }
    source = files.join(path.delimiter);
    loadFile(kc, files[0]!);
    for (const file of files.slice(1)) {
      const more = new KubeConfig();
      loadFile(more, file);
      mergeMissing(kc, more);
    }
  } else {
    const home = options.home ?? os.homedir();
    const defaultFile = path.join(home, '.kube', 'config');
    if (fs.existsSync(defaultFile)) {
      source = defaultFile;
      loadFile(kc, defaultFile);
    } else if (env.KUBERNETES_SERVICE_HOST && fs.existsSync(SERVICE_ACCOUNT_TOKEN)) {
      source = 'in-cluster service account';
      kc.loadFromCluster();
    } else {
      throw new Error(
        `kubeconfig: none found (no --kubeconfig, KUBECONFIG unset, no ${defaultFile}, and not running in a pod with a service account)`,
      );
    }
  }

  if (options.context) {
    if (!kc.getContextObject(options.context)) {
      const known = kc.getContexts().map((c) => c.name);
      throw new Error(
        `kubeconfig ${source}: no context named '${options.context}' (it has: ${known.join(', ') || 'none'})`,
      );
    }
    kc.setCurrentContext(options.context);
  }
  const contextName = kc.getCurrentContext();
  if (!contextName) {
    throw new Error(
      `kubeconfig ${source}: no current-context (set one with kubectl config use-context, or pass a context)`,
    );
  }
  const context = kc.getContextObject(contextName);
  if (!context) throw new Error(`kubeconfig ${source}: the current context '${contextName}' is not defined`);
  const cluster = kc.getCluster(context.cluster);
  if (!cluster) {
    throw new Error(
      `kubeconfig ${source}: context '${contextName}' names cluster '${context.cluster}', which is not defined`,
    );
  }
  if (context.user && !kc.getUser(context.user)) {
    throw new Error(
      `kubeconfig ${source}: context '${contextName}' names user '${context.user}', which is not defined`,
    );
  }
  let server: URL;
  try {
    server = new URL(cluster.server);
  } catch {
    throw new Error(
      `kubeconfig ${source}: cluster '${cluster.name}' has an invalid server address '${cluster.server}'`,
    );
  }
  if (server.protocol !== 'http:' && server.protocol !== 'https:') {
    throw new Error(
      `kubeconfig ${source}: cluster '${cluster.name}' server '${cluster.server}' is neither http:// nor https://`,
    );
  }
  if (server.protocol === 'http:' && !cluster.skipTLSVerify) {
    // kubectl talks plain HTTP to an http:// server (kubectl proxy, test servers); client-node
    // refuses unless skipTLSVerify is set, which means nothing without TLS anyway.
    const clusters: Cluster[] = kc
      .getClusters()
      .map((c) => (c === cluster ? { ...c, skipTLSVerify: true } : c));
    kc.loadFromOptions({
      clusters,
      contexts: kc.getContexts(),
      users: kc.getUsers(),
      currentContext: kc.getCurrentContext(),
    });
  }
  return {
    kc,
    source,
    server: cluster.server.replace(/\/+$/, ''),
    ...(context.namespace ? { namespace: context.namespace } : {}),
  };
}

function loadFile(kc: KubeConfig, file: string): void {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EACCES'
          ? 'permission denied'
          : code === 'EISDIR'
            ? 'is a directory'
            : messageOf(error);
    throw new Error(`kubeconfig ${file}: ${why}`);
  }
  if (text.trim() === '') throw new Error(`kubeconfig ${file}: the file is empty`);
  try {
    kc.loadFromString(text);
  } catch (error) {
    // js-yaml's syntax errors name the line; a TypeError means the YAML is not a mapping.
    const why = error instanceof TypeError ? 'not a YAML mapping' : firstLine(messageOf(error));
    throw new Error(`kubeconfig ${file}: not a valid kubeconfig: ${why}`);
  }
  if (kc.getClusters().length === 0 && kc.getContexts().length === 0) {
    throw new Error(`kubeconfig ${file}: not a valid kubeconfig: it defines no clusters and no contexts`);
  }
  // Relative certificate and key paths are relative to the file, as kubectl reads them.
  const root = path.dirname(path.resolve(file));
  for (const cluster of kc.getClusters()) {
    if (cluster.caFile && !path.isAbsolute(cluster.caFile)) cluster.caFile = path.join(root, cluster.caFile);
  }
  for (const user of kc.getUsers()) {
    if (user.certFile && !path.isAbsolute(user.certFile)) user.certFile = path.join(root, user.certFile);
    if (user.keyFile && !path.isAbsolute(user.keyFile)) user.keyFile = path.join(root, user.keyFile);
  }
}

/** kubectl's merge of several KUBECONFIG files: entries missing so far are added; the first wins. */
function mergeMissing(kc: KubeConfig, more: KubeConfig): void {
  const has = (list: Array<{ name: string }>, name: string) => list.some((entry) => entry.name === name);
  kc.loadFromOptions({
    clusters: [...kc.getClusters(), ...more.getClusters().filter((c) => !has(kc.getClusters(), c.name))],
    users: [...kc.getUsers(), ...more.getUsers().filter((u) => !has(kc.getUsers(), u.name))],
    contexts: [...kc.getContexts(), ...more.getContexts().filter((c) => !has(kc.getContexts(), c.name))],
    currentContext: kc.getCurrentContext() || more.getCurrentContext(),
  });
}

function firstLine(text: string): string {
  return text.split('\n')[0] ?? text;
}
