import { Link } from '../lib/router';
import { useTitle } from '../lib/title';

export function NotFound() {
  useTitle('Not found');
  return (
    <section>
      <h1>Nothing here</h1>
      <p>
        This page does not exist. <Link to="/">Back to the projects</Link>.
      </p>
    </section>
  );
}
