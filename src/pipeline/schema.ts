/**
 * The pipeline file format (`.slipway.yml`, version 1), defined once. The validator walks the
 * YAML document against these schemas, and `pipelineJsonSchema()` publishes them for editors,
 * so the two cannot drift apart.
 *
 * Besides standard JSON Schema keywords the validator reads `title` (the noun used in
 * messages: "a list of steps", `invalid duration "5x"`) and `patternErrorMessage` (what to say
 * when a `pattern` fails; VS Code and yaml-language-server show it too).
 */
import { Type, type Static } from '@sinclair/typebox';
import { EVENTS, FINAL_STATUSES } from './types.js';
import { SLUG_PATTERN } from '../contract/project.js';

/** Stage, step and service names: they end up in container names, labels and URLs. */
export const NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$';
/** Environment variable names, as POSIX shells accept them. */
export const ENV_NAME_PATTERN = '^[A-Za-z_][A-Za-z0-9_]*$';
/** `90s`, `5m`, `1h`, `1h30m`, or bare seconds (`90`); zero and the upper bound are checked later. */
export const DURATION_PATTERN = '^(?:\\d+|(?=\\d)(?:\\d+h)?(?:\\d+m)?(?:\\d+s)?)$';

const Name = (what: string) =>
  Type.String({
    title: 'name',
    description: `Name of the ${what}: letters, digits, ".", "_" or "-", starting with a letter or digit, at most 63 characters.`,
    pattern: NAME_PATTERN,
    patternErrorMessage:
      'expected letters, digits, ".", "_" or "-", starting with a letter or digit (at most 63 characters)',
  });

const Image = Type.String({
  minLength: 1,
  description: 'Container image, e.g. `node:20`. `${NAME}` variables are substituted.',
});

const Commands = (what: string) =>
  Type.Array(Type.String(), {
    minItems: 1,
    description: `Shell commands of the ${what}, run in order by one \`/bin/sh -e\`; the first failure stops it. \`\${NAME}\` is substituted when the pipeline is compiled, \`$\${NAME}\` is left to the shell as \`\${NAME}\`, \`$NAME\` is always left to the shell.`,
  });

const SecretRef = Type.Object(
  {
    from_secret: Type.String({
      minLength: 1,
      description:
        'Name of the secret (configured on the server) whose value this variable gets at run time.',
    }),
  },
  {
    title: 'secret reference',
    examples: [{ from_secret: 'NAME' }],
    description: 'Take the value from a server secret; it is masked (`********`) in all logs.',
    additionalProperties: false,
  },
);

/** `reports: { junit: … }`: test reports read from the workspace after each attempt of the step. */
const Reports = Type.Object(
  {
    junit: Type.Union(
      [Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })],
      {
        title: 'glob or list of globs',
        description:
          'JUnit XML files the step writes, as workspace-relative paths or globs (`reports/**/*.xml`); read after every attempt, failed ones too. `${NAME}` is substituted.',
      },
    ),
  },
  {
    title: 'mapping of report globs',
    additionalProperties: false,
    description: "Test reports: their totals and failed tests show on the build's page and in the API.",
  },
);

const EnvValue = Type.Union(
  [
    Type.String({ description: '`${NAME}` variables are substituted.' }),
    Type.Number({ description: 'Exported as written in the file (`1.10` stays `1.10`).' }),
    Type.Boolean({ description: 'Exported as written in the file (`true`/`false`).' }),
    SecretRef,
  ],
  { description: 'A string, number or boolean (exported as text), or `{from_secret: NAME}`.' },
);

const Env = (scope: string) =>
  Type.Record(Type.String({ pattern: ENV_NAME_PATTERN }), EnvValue, {
    additionalProperties: false,
    // Redundant with the pattern above, but lets editors and messages name the problem.
    propertyNames: {
      title: 'variable name',
      pattern: ENV_NAME_PATTERN,
      patternErrorMessage: 'expected letters, digits and "_", not starting with a digit',
    },
    description: `Environment variables ${scope}. Values may use \`\${NAME}\` of lower-precedence scopes and of the same block.`,
  });

const Event = Type.Union(
  EVENTS.map((e) => Type.Literal(e)),
  { title: 'event' },
);
const Status = Type.Union(
  FINAL_STATUSES.map((s) => Type.Literal(s)),
  { title: 'status' },
);

const Duration = Type.Union(
  [
    Type.String({
      pattern: DURATION_PATTERN,
      title: 'duration',
      patternErrorMessage: 'expected a number followed by s, m or h (e.g. 90s, 5m, 1h)',
    }),
    Type.Integer({ title: 'number of seconds', minimum: 1, maximum: 604_800 }),
  ],
  {
    title: 'duration',
    examples: ['90s', '5m', '1h'],
    description: 'A number followed by s, m or h, combinable (`1h30m`), or whole seconds; at most 168h.',
  },
);

const When = Type.Object(
  {
    branch: Type.Optional(
      Type.String({
        format: 'regex',
        title: 'branch pattern',
        description:
          'Regular expression (RE2 syntax: no backreferences or lookaround; at most 1000 characters) the branch must match, anchored at both ends: `main|release/.*`.',
      }),
    ),
    event: Type.Optional(
      Type.Union([Event, Type.Array(Event, { minItems: 1 })], {
        description: 'Events that run the stage: push, tag, pull_request, manual, cron (a schedule).',
      }),
    ),
    status: Type.Optional(
      Type.Union([Status, Type.Array(Status, { minItems: 1 })], {
        description:
          'Build statuses (so far) that let the stage run; default: only `success`. `[success, failure]` runs it whatever happened before.',
      }),
    ),
  },
  {
    additionalProperties: false,
    description: 'All given conditions must hold, else the stage is `skipped`.',
  },
);

/** Matrix axis names, and the names of variables an `include` adds: `${matrix.NAME}`. */
export const MATRIX_KEY_PATTERN = '^[A-Za-z_][A-Za-z0-9_-]*$';

const MatrixValue = Type.Union([Type.String(), Type.Number(), Type.Boolean()], {
  title: 'matrix value',
  description: 'A string, number or boolean; numbers are used as written (`1.10` stays `1.10`).',
});

const MatrixCell = (what: string) =>
  Type.Record(Type.String({ pattern: MATRIX_KEY_PATTERN }), MatrixValue, {
    additionalProperties: false,
    propertyNames: {
      title: 'matrix key',
      pattern: MATRIX_KEY_PATTERN,
      patternErrorMessage: 'expected letters, digits, "_" and "-", not starting with a digit or "-"',
    },
    description: what,
  });

const Matrix = Type.Object(
  {
    include: Type.Optional(
      Type.Array(
        MatrixCell(
          'Adds its keys to every cell whose axis values it matches (never changing an axis value); matches none: an extra cell of its own.',
        ),
        {
          minItems: 1,
          description: 'Extra cells, or extra variables for matching cells (GitHub Actions semantics).',
        },
      ),
    ),
    exclude: Type.Optional(
      Type.Array(MatrixCell('Removes every cell with all of these axis values.'), {
        minItems: 1,
        description: 'Cells to leave out; applied before `include`.',
      }),
    ),
    max_parallel: Type.Optional(
      Type.Integer({ minimum: 1, description: 'Most cells running at once. Default: no limit of its own.' }),
    ),
  },
  {
    title: 'matrix',
    additionalProperties: false,
    // Every other key is an axis: its values, one cell per combination with the other axes.
    patternProperties: {
      [MATRIX_KEY_PATTERN]: Type.Array(MatrixValue, {
        minItems: 1,
        description: 'An axis: the values it takes, one cell per combination with the other axes.',
      }),
    },
    examples: [{ node: [18, 20], db: ['pg', 'mysql'] }],
    description:
      'Runs the step (on a stage: each of its steps, `needs` within the cell) once per combination of the axis values (at most 256 cells), each a step named `name (axis=value, …)` with `${matrix.AXIS}` substituted and `MATRIX_AXIS` exported. A step of a stage with a matrix has none of its own.',
  },
);

/** `cache: { key, restore_keys, paths }`: files kept from one build of a project to the next. */
const Cache = Type.Object(
  {
    key: Type.String({
      minLength: 1,
      description:
        "The cache's key (letters, digits, `. _ - + = : @ /`); `${NAME}` is substituted and `${hashFiles('glob', …)}` is a SHA-256 of the matching files of the checkout. A build that finds this exact key restores it and saves nothing.",
      examples: ["npm-${hashFiles('package-lock.json')}"],
    }),
    restore_keys: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        description:
          'Prefixes tried in order when the exact key is missing; the newest cache whose key starts with one is restored.',
      }),
    ),
    paths: Type.Array(Type.String({ minLength: 1 }), {
      minItems: 1,
      description:
        "Files or directories to keep, relative to the workspace or `~/…` for the step's HOME; no `..`, not absolute, no globs.",
    }),
  },
  {
    title: 'cache',
    additionalProperties: false,
    description:
      'Restored before the step (exact key, then each restore key prefix, this branch then the default branch), saved after it succeeded when the exact key was not found. Pull requests from forks restore but never save.',
  },
);

/** One step: commands run in one container (or shell, for the local executor). */
export const StepSchema = Type.Object(
  {
    name: Name('step; unique within its stage'),
    image: Type.Optional(Image),
    commands: Commands('step'),
    env: Type.Optional(Env('of this step; they override stage and top-level ones')),
    timeout: Type.Optional(Duration),
    retries: Type.Optional(
      Type.Integer({
        minimum: 0,
        description: 'Re-run a failed step up to this many more times. Default 0.',
      }),
    ),
    allow_failure: Type.Optional(
      Type.Boolean({ description: "The step's failure does not fail the stage. Default false." }),
    ),
    needs: Type.Optional(
      Type.Array(Type.String(), {
        description: 'Steps of the same stage that must succeed before this one starts.',
      }),
    ),
    artifacts: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        description:
          'Files to keep after the build, as workspace-relative paths or globs (`reports/**/*.xml`).',
      }),
    ),
    reports: Type.Optional(Reports),
    matrix: Type.Optional(Matrix),
    cache: Type.Optional(Cache),
  },
  {
    title: 'step',
    additionalProperties: false,
    description: 'A step: commands run in one container or shell.',
  },
);

const Steps = Type.Array(StepSchema, {
  minItems: 1,
  description: 'Steps run in parallel, unless ordered by `needs`.',
});

/** One stage: steps that run in parallel, with the conditions under which the stage runs. */
export const StageSchema = Type.Object(
  {
    name: Name('stage; unique within the pipeline'),
    when: Type.Optional(When),
    approval: Type.Optional(
      Type.Boolean({
        description:
          'The build waits (status `waiting`) until a person approves or rejects the stage. Default false.',
      }),
    ),
    env: Type.Optional(Env('of this stage; they override top-level ones')),
    matrix: Type.Optional(Matrix),
    steps: Steps,
  },
  { title: 'stage', additionalProperties: false, description: 'Stages run one after another.' },
);

/** A sidecar container that lives for the whole build. */
export const ServiceSchema = Type.Object(
  {
    name: Name('service; unique within the pipeline'),
    image: Type.Optional(Image),
    env: Type.Optional(Env('of this service')),
    commands: Type.Optional(Commands("service, instead of the image's own command")),
    wait_for: Type.Optional(
      Type.Integer({
        title: 'port number',
        minimum: 1,
        maximum: 65_535,
        description: 'TCP port; steps start once it accepts connections.',
      }),
    ),
  },
  {
    title: 'service',
    additionalProperties: false,
    description: 'A sidecar, reachable on localhost from every step.',
  },
);

/** `include:` entries: other files of this repository, or pinned files of another project. */
export const IncludeSchema = Type.Array(
  Type.Object(
    {
      file: Type.String({
        minLength: 1,
        description:
          'Path of the file from the root of its repository, e.g. `ci/common.yml` (no `..`, not absolute).',
      }),
      project: Type.Optional(
        Type.String({
          title: 'project',
          pattern: SLUG_PATTERN,
          patternErrorMessage: 'expected a project of this server as owner/name',
          description: 'Another project of this server (`owner/name`) to take the file from; needs `ref`.',
        }),
      ),
      ref: Type.Optional(
        Type.String({
          minLength: 1,
          description:
            'With `project`: the commit (40 hexadecimal digits) or tag to read the file at. A branch is refused: it moves.',
        }),
      ),
    },
    {
      title: 'include',
      additionalProperties: false,
      description: 'A file whose stages, services, env and image this file takes in.',
    },
  ),
  {
    minItems: 1,
    description:
      "Files merged into this one: their stages first (in this order), then this file's; this file's image and env entries win.",
  },
);

/** The whole file: either `stages` or (short form) `steps`, plus build-wide settings. */
export const PipelineSchema = Type.Object(
  {
    include: Type.Optional(IncludeSchema),
    image: Type.Optional(Image),
    env: Type.Optional(Env('exported to every step')),
    services: Type.Optional(
      Type.Array(ServiceSchema, { description: 'Sidecars started before the first stage.' }),
    ),
    stages: Type.Optional(
      Type.Array(StageSchema, { minItems: 1, description: 'Stages run one after another.' }),
    ),
    steps: Type.Optional(
      Type.Array(StepSchema, {
        minItems: 1,
        description: 'Short form: the steps of one stage named `default` (use instead of `stages`).',
      }),
    ),
  },
  {
    title: 'Slipway pipeline',
    description: 'A Slipway pipeline file (`.slipway.yml`), version 1.',
    additionalProperties: false,
    // Docker Compose's convention: a place for anchors (`x-defaults: &defaults …`), ignored.
    patternProperties: { '^x-': {} },
    // Exactly one of the two forms. The validator reads this too (see validate.ts).
    oneOf: [{ required: ['stages'] }, { required: ['steps'] }],
  },
);

/** The pipeline file as its YAML parses, once valid. */
export type PipelineFile = Static<typeof PipelineSchema>;
export type StepFile = Static<typeof StepSchema>;
export type StageFile = Static<typeof StageSchema>;
export type ServiceFile = Static<typeof ServiceSchema>;

/**
 * The JSON Schema of the pipeline file, for editors (`# yaml-language-server: $schema=…`)
 * and the `/schema` endpoint. A fresh plain object each call, safe to mutate or serialise.
 */
export function pipelineJsonSchema(): Record<string, unknown> {
  // JSON round trip: drops TypeBox's symbol keys (Kind, Optional) and shares nothing.
  const plain = JSON.parse(JSON.stringify(PipelineSchema)) as Record<string, unknown>;
  // With `include` the stages may all come from the included files: `stages`, `steps`, or
  // `include` alone. (The compiler checks a file with `include` after merging, see include.ts.)
  plain.oneOf = [
    ...(plain.oneOf as unknown[]),
    { required: ['include'], not: { anyOf: [{ required: ['stages'] }, { required: ['steps'] }] } },
  ];
  return { $schema: 'http://json-schema.org/draft-07/schema#', ...plain };
}
