import { PROJECT_EXECUTORS } from '../../../../src/contract/executors.js';
import { useEffect, useState, type FormEvent } from 'react';
import { ApiError } from '../../api/client';
import type { ConcurrencyPolicy, ExecutorInfo, Project, ProjectCreate } from '../../api/types';
import { isAdmin, useApi, useSession } from '../../api/session';
import { ErrorNote, Loading } from '../../components/Feedback';
import { useAction, usePoll } from '../../lib/hooks';
import { Link, navigate, projectPath } from '../../lib/router';
import { useTitle } from '../../lib/title';

interface Fields {
  slug: string;
  repoUrl: string;
  branchFilter: string;
  pipelinePath: string;
  defaultImage: string;
  defaultExecutor: string;
  concurrencyPolicy: ConcurrencyPolicy;
  maxRunning: string;
}

function fieldsOf(project: Project | undefined): Fields {
  return {
    slug: project?.slug ?? '',
    repoUrl: project?.repoUrl ?? '',
    branchFilter: project?.branchFilter ?? '.*',
    pipelinePath: project?.pipelinePath ?? '.slipway.yml',
    defaultImage: project?.defaultImage ?? '',
    defaultExecutor: project?.defaultExecutor ?? '',
    concurrencyPolicy: project?.concurrencyPolicy ?? 'queue',
    maxRunning: project?.maxRunning?.toString() ?? '',
  };
}

function bodyOf(fields: Fields): Omit<ProjectCreate, 'slug'> {
  const orNull = (value: string) => (value.trim() === '' ? null : value.trim());
  return {
    repoUrl: fields.repoUrl.trim(),
    branchFilter: fields.branchFilter,
    pipelinePath: fields.pipelinePath.trim(),
    defaultImage: orNull(fields.defaultImage),
    // Only this server's executors are offered; anything else (none chosen) is the server's default.
    defaultExecutor: PROJECT_EXECUTORS.find((e) => e === fields.defaultExecutor) ?? null,
    concurrencyPolicy: fields.concurrencyPolicy,
    maxRunning: fields.maxRunning.trim() === '' ? null : Number(fields.maxRunning),
  };
}

/**
 * The server's slug rule (`SLUG_PATTERN` in the API schemas) as an HTML `pattern`: browsers
 * compile it with the `v` flag, where `-` (and `/`) inside a class must be escaped, else the
 * pattern is invalid and silently checks nothing.
 */
export const SLUG_INPUT_PATTERN = '[A-Za-z0-9][A-Za-z0-9._\\-]*/[A-Za-z0-9][A-Za-z0-9._\\-]*';

/**
 * Field errors of a 400 answer (`details.fields[].path` such as `body.repoUrl`) by form field,
 * for the fields this form has; the rest stays a message at the bottom.
 */
function fieldErrors(error: unknown): Partial<Record<keyof Fields, string>> {
  if (!(error instanceof ApiError) || error.status !== 400) return {};
  const details = error.details;
  if (typeof details !== 'object' || details === null || !('fields' in details)) return {};
  const fields = details.fields;
  if (!Array.isArray(fields)) return {};
  const found: Partial<Record<keyof Fields, string>> = {};
  for (const entry of fields as unknown[]) {
    if (typeof entry !== 'object' || entry === null || !('path' in entry) || !('message' in entry)) continue;
    const { path, message } = entry;
    if (typeof path !== 'string' || typeof message !== 'string') continue;
    const key = path.replace(/^body\./, '').split(/[.[]/)[0];
    if (key !== undefined && key in FIELD_NAMES && found[key as keyof Fields] === undefined) {
      found[key as keyof Fields] = message;
    }
  }
  return found;
}

const FIELD_NAMES: Record<keyof Fields, true> = {
  slug: true,
  repoUrl: true,
  branchFilter: true,
  pipelinePath: true,
  defaultImage: true,
  defaultExecutor: true,
  concurrencyPolicy: true,
  maxRunning: true,
};

/** Create a project (no slug given) or change one's settings. Admin only. */
export function ProjectFormPage({ slug }: { slug?: string }) {
  useTitle(slug === undefined ? 'New project' : `Settings of ${slug}`);
  const api = useApi();
  const { me } = useSession();
  const existing = usePoll(
    (signal) => (slug === undefined ? Promise.resolve(undefined) : api.getProject(slug, signal)),
    `project:${slug ?? ''}`,
  );
  if (slug !== undefined && existing.data === undefined) {
    return existing.error !== undefined ? (
      <ErrorNote error={existing.error} />
    ) : (
      <Loading what="the project" />
    );
  }
  return (
    <section>
      <h1>{slug === undefined ? 'New project' : `Settings of ${slug}`}</h1>
      {!isAdmin(me) && (
        <p className="note note-warn">Only admins can change projects; the server will refuse your token.</p>
      )}
      <ProjectForm project={existing.data} />
    </section>
  );
}

function ProjectForm({ project }: { project: Project | undefined }) {
  const api = useApi();
  const [fields, setFields] = useState(() => fieldsOf(project));
  const save = useAction();
  const executors = usePoll((signal) => api.executors(signal), 'executors');
  const errors = fieldErrors(save.error);
  const unplaced = Object.keys(errors).length === 0 ? save.error : undefined;
  const set =
    <K extends keyof Fields>(key: K) =>
    (value: Fields[K]) =>
      setFields((f) => ({ ...f, [key]: value }));

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    let saved: Project | undefined;
    const ok = await save.run(async () => {
      saved =
        project === undefined
          ? await api.createProject({ slug: fields.slug.trim(), ...bodyOf(fields) })
          : await api.updateProject(project.slug, bodyOf(fields));
    });
    if (ok && saved !== undefined) navigate(projectPath(saved.slug));
  };
  // The first field the server refused gets the focus, so the keyboard is where the fix is.
  const firstInvalid = (Object.keys(FIELD_NAMES) as (keyof Fields)[]).find((k) => errors[k] !== undefined);
  useEffect(() => {
    if (firstInvalid !== undefined) document.getElementById(firstInvalid)?.focus();
  }, [firstInvalid, save.error]);

  return (
    <form className="form card" onSubmit={(e) => void submit(e)}>
      <TextField
        id="slug"
        label="Name (owner/name)"
        value={fields.slug}
        onChange={set('slug')}
        disabled={project !== undefined}
        required
        pattern={SLUG_INPUT_PATTERN}
        title="owner/name: letters, digits, “.”, “_” and “-”, not starting with a punctuation mark"
        placeholder="acme/web"
        error={errors.slug}
      />
      <TextField
        id="repoUrl"
        label="Repository URL"
        value={fields.repoUrl}
        onChange={set('repoUrl')}
        error={errors.repoUrl}
        required
        placeholder="https://git.example.com/acme/web.git"
      />
      <TextField
        id="branchFilter"
        label="Branch filter (regular expression)"
        value={fields.branchFilter}
        onChange={set('branchFilter')}
        error={errors.branchFilter}
        hint="Pushes to matching branches start builds; manual triggers build any branch."
      />
      <TextField
        id="pipelinePath"
        label="Pipeline file"
        value={fields.pipelinePath}
        onChange={set('pipelinePath')}
        error={errors.pipelinePath}
      />
      <TextField
        id="defaultImage"
        label="Default image"
        value={fields.defaultImage}
        onChange={set('defaultImage')}
        placeholder="(the executor's default)"
        error={errors.defaultImage}
      />
      <ExecutorField
        value={fields.defaultExecutor}
        onChange={set('defaultExecutor')}
        executors={executors.data}
        error={errors.defaultExecutor}
      />
      <div className="field">
        <label htmlFor="concurrencyPolicy">When a branch already has a build running</label>
        <select
          id="concurrencyPolicy"
          value={fields.concurrencyPolicy}
          onChange={(e) => set('concurrencyPolicy')(e.target.value === 'supersede' ? 'supersede' : 'queue')}
        >
          <option value="queue">queue the new build</option>
          <option value="supersede">cancel the older build (supersede)</option>
        </select>
      </div>
      <TextField
        id="maxRunning"
        label="Running builds at once"
        value={fields.maxRunning}
        onChange={set('maxRunning')}
        type="number"
        placeholder="(only the global limit)"
        error={errors.maxRunning}
      />
      <ErrorNote error={unplaced} />
      <div className="actions">
        <button type="submit" className="primary" disabled={save.busy}>
          {project === undefined ? 'Create project' : 'Save'}
        </button>
        <Link to={project === undefined ? '/' : projectPath(project.slug)} className="button">
          Cancel
        </Link>
      </div>
    </form>
  );
}

interface TextFieldProps {
  id: string;
  label: string;
  value: string;
  onChange: (value: string) => void;
  hint?: string;
  type?: string;
  required?: boolean;
  disabled?: boolean;
  pattern?: string;
  title?: string;
  placeholder?: string;
  /** What the server said is wrong with this field. */
  error?: string | undefined;
}

function describedBy(id: string, hint: boolean, error: boolean): string | undefined {
  const ids = [hint ? `${id}-hint` : null, error ? `${id}-error` : null].filter((x) => x !== null);
  return ids.length > 0 ? ids.join(' ') : undefined;
}

function FieldError({ id, error }: { id: string; error: string | undefined }) {
  if (error === undefined) return null;
  return (
    <p id={`${id}-error`} className="field-error" role="alert">
      {error}
    </p>
  );
}

function TextField({ id, label, value, onChange, hint, error, type = 'text', ...rest }: TextFieldProps) {
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <input
        id={id}
        name={id}
        type={type}
        value={value}
        onChange={(e) => onChange(e.target.value)}
        aria-describedby={describedBy(id, hint !== undefined, error !== undefined)}
        aria-invalid={error !== undefined ? true : undefined}
        spellCheck={false}
        {...(type === 'number' ? { min: 1 } : {})}
        {...rest}
      />
      {hint !== undefined && (
        <p id={`${id}-hint`} className="hint">
          {hint}
        </p>
      )}
      <FieldError id={id} error={error} />
    </div>
  );
}

/**
 * The executor as a choice among this server's (`GET /executors`): the server's default, or
 * one of them; those it cannot use are shown, disabled, with why.
 */
function ExecutorField({
  value,
  onChange,
  executors,
  error,
}: {
  value: string;
  onChange: (value: string) => void;
  executors: ExecutorInfo[] | undefined;
  error: string | undefined;
}) {
  const fallback = executors?.find((e) => e.isDefault)?.name;
  const known = executors ?? [];
  const chosen = known.find((e) => e.name === value);
  return (
    <div className="field">
      <label htmlFor="defaultExecutor">Executor</label>
      <select
        id="defaultExecutor"
        name="defaultExecutor"
        value={value}
        onChange={(e) => onChange(e.target.value)}
        aria-describedby={describedBy('defaultExecutor', true, error !== undefined)}
        aria-invalid={error !== undefined ? true : undefined}
      >
        <option value="">
          {fallback !== undefined ? `the server's default (${fallback})` : "the server's default"}
        </option>
        {known.map((e) => (
          <option key={e.name} value={e.name} disabled={!e.usable && e.name !== value}>
            {e.usable ? e.name : `${e.name} (unavailable)`}
          </option>
        ))}
        {value !== '' && chosen === undefined && <option value={value}>{value}</option>}
      </select>
      <p id="defaultExecutor-hint" className="hint">
        {chosen !== undefined ? chosen.detail : 'Where the steps of its builds run.'}
      </p>
      <FieldError id="defaultExecutor" error={error} />
    </div>
  );
}
