import { describe, expect, it } from 'vitest';
import { assertKubeValid, ephemeralContainerErrors, kubeSchemaErrors } from './schema.js';

function pod(container: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', labels: { 'slipway.dev/build': 'b1' }, annotations: { 'any/key': 'x' } },
    spec: {
      restartPolicy: 'Never',
      containers: [
        { name: 'hold', image: 'busybox', resources: { limits: { cpu: '1', memory: '1Gi' } } },
        { name: 'c', image: 'busybox', ...container },
      ],
      volumes: [{ name: 'w', emptyDir: { sizeLimit: '1Gi' } }],
    },
  };
}

describe('kubeSchemaErrors', () => {
  it('passes a valid pod (free-form maps: labels, annotations, resource quantities)', () => {
    expect(kubeSchemaErrors(pod())).toEqual([]);
    expect(() => assertKubeValid(pod())).not.toThrow();
  });

  it('reports a misspelt field deep inside with its path (the unknown-field walk)', () => {
    const errors = kubeSchemaErrors(pod({ imagePullPolicyy: 'Always' }));
    expect(errors).toEqual(['spec.containers[1].imagePullPolicyy: unknown field (in V1Container)']);
    expect(kubeSchemaErrors({ ...pod(), metadata: { name: 'p', label: {} } })).toEqual([
      'metadata.label: unknown field (in V1ObjectMeta)',
    ]);
  });

  it('reports a wrong type, a missing required field and a bad enum with their paths', () => {
    const errors = kubeSchemaErrors(
      pod({ imagePullPolicy: 'Sometimes', ports: [{ containerPort: '80' }], env: [{ value: 'x' }] }),
    );
    expect(errors).toEqual(
      expect.arrayContaining([
        'spec.containers[1].imagePullPolicy: must be equal to one of the allowed values (Always, IfNotPresent, Never)',
        'spec.containers[1].ports[0].containerPort: must be integer',
        'spec.containers[1].env[0].name: required field missing',
      ]),
    );
    expect(errors).toHaveLength(3);
  });

  it('reports an unknown kind and a non-object', () => {
    expect(kubeSchemaErrors({ apiVersion: 'v1', kind: 'Pdo', metadata: { name: 'x' } })[0]).toMatch(
      /^\(root\): unknown kind v1\/Pdo/,
    );
    expect(kubeSchemaErrors('pod')).toEqual(['(root): must be an object, not string']);
  });

  it('walks maps of models (a CRD schema) and knows every kind Slipway generates', () => {
    const crd = {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: 'things.example.com' },
      spec: {
        group: 'example.com',
        names: { kind: 'Thing', plural: 'things' },
        scope: 'Namespaced',
        versions: [
          {
            name: 'v1',
            served: true,
            storage: true,
            schema: { openAPIV3Schema: { type: 'object', properties: { a: { type: 'string', typo: 1 } } } },
          },
        ],
      },
    };
    expect(kubeSchemaErrors(crd)).toEqual([
      'spec.versions[0].schema.openAPIV3Schema.properties.a.typo: unknown field (in V1JSONSchemaProps)',
    ]);
    const role = {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: 'r', namespace: 'n' },
      rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get'] }],
    };
    expect(kubeSchemaErrors(role)).toEqual([]);
  });

  it('assertKubeValid throws with every error', () => {
    expect(() => assertKubeValid(pod({ imagePullPolicyy: 1, imagePullPolicy: 'x' }))).toThrow(
      /Pod p is not valid:\n {2}spec.containers\[1\].imagePullPolicy: must be equal.*\n {2}spec.containers\[1\].imagePullPolicyy: unknown field/,
    );
  });
});

describe('ephemeralContainerErrors', () => {
  it('passes a valid one and reports unknown fields and bad values with paths', () => {
    const c = { name: 'step-a', image: 'busybox', command: ['/bin/sh'], targetContainerName: 'hold' };
    expect(ephemeralContainerErrors(c)).toEqual([]);
    expect(
      ephemeralContainerErrors({
        ...c,
        resources: {},
        volumeMounts: [{ name: 'w', mountPath: '/w', ro: true }],
      }),
    ).toEqual(['volumeMounts[0].ro: unknown field (in V1VolumeMount)']);
    expect(ephemeralContainerErrors({ image: 'x', imagePullPolicy: 'Sometimes' })).toEqual([
      'name: required field missing',
      'imagePullPolicy: must be equal to one of the allowed values (Always, IfNotPresent, Never)',
    ]);
  });
});
