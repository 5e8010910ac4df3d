/**
 * A build's state in one process (the `BuildHandle` the orchestrator holds), and what the
 * executor's modules share. Nothing here is the truth about a build: the engine is, through
 * labels, so a later process rebuilds this from them (`resumeBuild`).
 */
import { randomBytes } from 'node:crypto';
import type { BuildHandle, BuildSpec, StepStart } from '../types.js';
import type { DockerClient, DockerContainer, Labels } from './client.js';
import type { EngineInfo } from './engine.js';
import type { ImageCache, Images } from './images.js';
import { LABELS, type Role } from './resources.js';
import { slug } from './util.js';

/** What every module of the executor works with. */
export interface DockerContext {
  client: DockerClient;
  /** The engine it talks to, for messages. */
  engine?: EngineInfo;
  images: Images;
  /** Where the workspace volume is mounted in every container. */
  workspace: string;
}

export interface ServiceRun {
  name: string;
  container: DockerContainer;
  /** The attached output, when this process started the service and someone listens. */
  output?: NodeJS.ReadableStream;
}

export class DockerBuild implements BuildHandle {
  /**
   * Start of the names of what this process creates for the build. Random so that two
   * processes never collide on a name; nothing is ever found by name, only by labels.
   */
  readonly prefix: string;
  volume: string | undefined;
  /**
   * The volume where steps' `~/` cache paths are staged (`cache-files.ts`), once a step needs
   * it; the name it resolves to exists on the engine.
   */
  caches: Promise<string> | undefined;
  infra: DockerContainer | undefined;
  /** Whether the infra container runs our shell keep-alive (so it can run port probes). */
  infraHasShell = false;
  readonly services: ServiceRun[] = [];
  readonly images: ImageCache = new Map();
  /** Set once the workspace is seeded (or seeding started); undefined while it still needs it. */
  seeded: Promise<void> | undefined;
  /** startStep calls under way, by `key#attempt`: a second call joins the first. */
  readonly starting = new Map<string, Promise<StepStart>>();
  destroyed = false;

  constructor(
    readonly spec: BuildSpec,
    readonly workspace: string,
  ) {
    this.prefix = `slipway-${slug(spec.buildId, 40)}-${randomBytes(3).toString('hex')}`;
    if (!spec.sourceDir) this.seeded = Promise.resolve();
  }

  get buildId(): string {
    return this.spec.buildId;
  }

  labels(role: Role, extra: Labels = {}): Labels {
    return {
      [LABELS.managed]: 'true',
      [LABELS.build]: this.spec.buildId,
      [LABELS.project]: this.spec.project,
      [LABELS.branch]: this.spec.branch,
      [LABELS.step]: '',
      [LABELS.role]: role,
      ...extra,
    };
  }

  /** The image a helper container (seeding, collecting files) can use, if the build names one. */
  helperImage(): string | undefined {
    return this.spec.image ?? [...this.images.keys()][0] ?? this.spec.services.find((s) => s.image)?.image;
  }
}
