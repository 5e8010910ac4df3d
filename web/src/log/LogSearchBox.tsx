import { useEffect, useLayoutEffect, useRef, useState, type KeyboardEvent } from 'react';

const DEBOUNCE_MS = 150;

interface Props {
  onSearch: (text: string) => void;
  matchCount: number;
  /** 1-based position of the current match, 0 when none. */
  current: number;
  onNext: () => void;
  onPrevious: () => void;
}

/** Find in the log: Enter for the next hit, Shift+Enter for the previous; `/` focuses it. */
export function LogSearchBox({ onSearch, matchCount, current, onNext, onPrevious }: Props) {
  const [text, setText] = useState('');
  const searchRef = useRef(onSearch);
  useLayoutEffect(() => {
    searchRef.current = onSearch;
  });

  useEffect(() => {
    const timer = setTimeout(() => searchRef.current(text), DEBOUNCE_MS);
    return () => clearTimeout(timer);
  }, [text]);

  useEffect(() => {
    const focus = (event: globalThis.KeyboardEvent) => {
      const target = event.target as HTMLElement | null;
      if (event.key !== '/' || target?.closest('input, textarea, select') != null) return;
      event.preventDefault();
      document.getElementById('log-search')?.focus();
    };
    window.addEventListener('keydown', focus);
    return () => window.removeEventListener('keydown', focus);
  }, []);

  const onKeyDown = (event: KeyboardEvent<HTMLInputElement>) => {
    if (event.key !== 'Enter') return;
    event.preventDefault();
    if (event.shiftKey) onPrevious();
    else onNext();
  };

  return (
    <div className="log-search" role="search">
      <label htmlFor="log-search" className="visually-hidden">
        Find in log
      </label>
      <input
        id="log-search"
        type="search"
        placeholder="Find in log  ( / )"
        value={text}
        spellCheck={false}
        onChange={(e) => setText(e.target.value)}
        onKeyDown={onKeyDown}
      />
      <span className="match-count" aria-live="polite" data-testid="match-count">
        {text === '' ? '' : matchCount === 0 ? 'no match' : `${current} of ${matchCount.toLocaleString()}`}
      </span>
      <button type="button" onClick={onPrevious} disabled={matchCount === 0} aria-label="Previous match">
        ↑
      </button>
      <button type="button" onClick={onNext} disabled={matchCount === 0} aria-label="Next match">
        ↓
      </button>
    </div>
  );
}
