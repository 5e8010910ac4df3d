import { useState, type FormEvent } from 'react';
import type { ConcurrencyPolicy, Project, ProjectCreate } from '../../api/types';
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
    defaultExecutor: orNull(fields.defaultExecutor),
    concurrencyPolicy: fields.concurrencyPolicy,
    maxRunning: fields.maxRunning.trim() === '' ? null : Number(fields.maxRunning),
  };
}

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

  return (
    <form className="form card" onSubmit={(e) => void submit(e)}>
      <TextField
        id="slug"
        label="Name (owner/name)"
        value={fields.slug}
        onChange={set('slug')}
        disabled={project !== undefined}
        required
        pattern="[^/\s]+/[^/\s]+"
        placeholder="acme/web"
      />
      <TextField
        id="repoUrl"
        label="Repository URL"
        value={fields.repoUrl}
        onChange={set('repoUrl')}
        required
        placeholder="https://git.example.com/acme/web.git"
      />
      <TextField
        id="branchFilter"
        label="Branch filter (regular expression)"
        value={fields.branchFilter}
        onChange={set('branchFilter')}
        hint="Pushes to matching branches start builds; manual triggers build any branch."
      />
      <TextField
        id="pipelinePath"
        label="Pipeline file"
        value={fields.pipelinePath}
        onChange={set('pipelinePath')}
      />
      <TextField
        id="defaultImage"
        label="Default image"
        value={fields.defaultImage}
        onChange={set('defaultImage')}
        placeholder="(the executor's default)"
      />
      <TextField
        id="defaultExecutor"
        label="Executor"
        value={fields.defaultExecutor}
        onChange={set('defaultExecutor')}
        placeholder="(the server's default)"
        hint="local, docker or kubernetes"
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
      />
      <ErrorNote error={save.error} />
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
  placeholder?: string;
}

function TextField({ id, label, value, onChange, hint, type = 'text', ...rest }: TextFieldProps) {
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <input
        id={id}
        name={id}
        type={type}
        value={value}
        onChange={(e) => onChange(e.target.value)}
        aria-describedby={hint !== undefined ? `${id}-hint` : undefined}
        spellCheck={false}
        {...(type === 'number' ? { min: 1 } : {})}
        {...rest}
      />
      {hint !== undefined && (
        <p id={`${id}-hint`} className="hint">
          {hint}
        </p>
      )}
    </div>
  );
}
