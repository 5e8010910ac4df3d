/**
 * The page a browser sees when sign-in with the IdP fails: the reason in words, a way back,
 * nothing else (no stack, no token, no claim but the person's own). Plain HTML from the
 * server: the web UI is not loaded on these routes.
 */
export function errorPage(title: string, message: string, retryPath: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · Slipway</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#1f2328}
h1{font-size:1.4rem}p.reason{background:#fff1f0;border-left:4px solid #cf222e;padding:.6rem .8rem}
@media (prefers-color-scheme:dark){body{background:#0d1117;color:#e6edf3}p.reason{background:#2d1214}}a{color:inherit}</style>
</head><body><main>
<h1>${escapeHtml(title)}</h1>
<p class="reason" role="alert">${escapeHtml(message)}</p>
<p><a href="${escapeHtml(retryPath)}">Try signing in again</a> · <a href="/">Slipway</a></p>
</main></body></html>
`;
}

export function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );
}
