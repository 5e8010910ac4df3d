import type { ArtifactInfo, BuildDetail } from '../../api/types';
import { useApi } from '../../api/session';
import { ErrorNote } from '../../components/Feedback';
import { isFinal } from '../../components/BuildActions';
import { formatBytes } from '../../lib/format';
import { saveBlob } from '../../lib/download';
import { useAction, usePoll } from '../../lib/hooks';

/**
 * Files the build's steps published. Shown only when the server has the artifacts route and
 * answers it; checked again once the build is over (artifacts are stored at the end of steps).
 */
export function Artifacts({ build }: { build: BuildDetail }) {
  const api = useApi();
  const final = isFinal(build);
  const list = usePoll((signal) => api.artifacts(build.id, signal), `artifacts:${build.id}:${final}`);
  const download = useAction();
  const items = list.data;
  if (items === undefined || items === null) return null;

  const save = (artifact: ArtifactInfo) =>
    void download.run(async () =>
      saveBlob(await api.artifact(build.id, artifact.path), artifact.path.split('/').pop() ?? 'artifact'),
    );

  return (
    <section className="artifacts" aria-labelledby="artifacts-title">
      <h2 id="artifacts-title">Artifacts</h2>
      {items.length === 0 ? (
        <p className="muted">{final ? 'This build published no artifacts.' : 'None yet.'}</p>
      ) : (
        <ul>
          {items.map((artifact) => (
            <li key={artifact.path}>
              <button type="button" className="link-button" onClick={() => save(artifact)}>
                {artifact.path}
              </button>{' '}
              <span className="muted">{formatBytes(artifact.size)}</span>
            </li>
          ))}
        </ul>
      )}
      <ErrorNote error={download.error} />
    </section>
  );
}
