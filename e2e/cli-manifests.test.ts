import { tmpdir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments, type Document } from 'yaml';
import { kubeSchemaErrors } from '../src/executors/kubernetes/testing/schema.js';
import { runCli } from './cli-helpers.js';

// No Kubernetes API server can run on these machines, and `kubectl create --dry-run=client`
// needs one for discovery: the YAML is checked offline against the schemas instead.
describe('slipway manifests (offline: no cluster)', () => {
  it('prints multi-document YAML that parses and passes the schema check, the database URL only in its Secret', async () => {
    const url = 'postgres://slipway:pw-e2e-123@db.ci.svc:5432/slipway';
    const result = await runCli(
      [
        'manifests',
        '--namespace',
        'slipway',
        '--build-namespace',
        'ci-builds',
        '--database',
        url,
        '--host',
        'ci.example.com',
        '--ingress-class',
        'nginx',
        '--image',
        'registry.example/slipway:test',
      ],
      { cwd: tmpdir() },
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const docs = parseAllDocuments(result.stdout);
    if (!Array.isArray(docs)) throw new Error('expected several YAML documents');
    const objects = docs.map((d: Document.Parsed) => {
      expect(d.errors).toEqual([]);
      return d.toJS() as { kind: string; metadata: { name: string; namespace?: string } };
    });
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual([
      'Namespace/slipway',
      'Namespace/ci-builds',
      'ServiceAccount/slipway',
      'Role/slipway-executor',
      'RoleBinding/slipway-executor',
      'ServiceAccount/slipway-build',
      'Secret/slipway-database',
      'PersistentVolumeClaim/slipway-data',
      'Deployment/slipway',
      'Service/slipway',
      'Ingress/slipway',
    ]);
    for (const object of objects) expect(kubeSchemaErrors(object), object.kind).toEqual([]);
    expect(objects.filter((o) => JSON.stringify(o).includes('pw-e2e-123')).map((o) => o.kind)).toEqual([
      'Secret',
    ]);
    expect(JSON.stringify(objects)).toContain('registry.example/slipway:test');
  });

  it('refuses --replicas 2 without PostgreSQL with a one-line reason, exit 2, nothing on stdout', async () => {
    const result = await runCli(['manifests', '--replicas', '2'], { cwd: tmpdir() });
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      'slipway: --replicas 2: several servers need --database postgres://… (SQLite on a volume cannot be shared)\n',
    );
  });
});
