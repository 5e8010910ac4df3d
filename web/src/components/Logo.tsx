/** The mark: a hull on a slipway. Inline SVG, so it needs no emoji font. */
export function Logo() {
  return (
    <svg className="logo" viewBox="0 0 24 24" width="22" height="22" aria-hidden="true" focusable="false">
      <path d="M3 14h18l-3.5 5h-11z" fill="currentColor" />
      <path d="M11 3v10H5z M12.5 5v8h5z" fill="var(--accent)" />
      <path d="M2 21.5l20-2" stroke="currentColor" strokeWidth="1.2" fill="none" opacity="0.6" />
    </svg>
  );
}
