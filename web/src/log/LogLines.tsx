import { useEffect, useLayoutEffect, useRef, useState, type UIEvent } from 'react';
import { stepLabel, type LogView } from './buffer';
import { LINE_HEIGHT, LogRow } from './LogRow';

/** Rows drawn beyond the visible ones, so fast scrolling shows no gaps. */
const OVERSCAN = 30;

/**
 * Scrolls the log to its end and, where the window is too short to show the whole log box (a
 * phone, a long stage graph), the page too, so that the newest line is fully visible, as long
 * as the log is in sight at all.
 */
function keepNewestInView(el: HTMLElement): void {
  el.scrollTop = el.scrollHeight;
  const box = el.getBoundingClientRect();
  if (box.top < window.innerHeight && box.bottom > window.innerHeight) {
    window.scrollBy({ top: box.bottom - window.innerHeight + 4 });
  }
}

/** Below this the log would be too short to read: it takes 70% of the window instead. */
const MIN_FIT = 12 * LINE_HEIGHT;

/** A row to bring into view once (again only when `id` changes); row -1: not there yet. */
export interface ScrollTarget {
  row: number;
  id: number;
}

interface Props {
  view: LogView;
  /** Changes whenever lines were added (the view itself is mutable). */
  version: number;
  needle: string;
  currentRow: number | null;
  selectedNumber: number | null;
  follow: boolean;
  onFollowChange: (follow: boolean) => void;
  target: ScrollTarget | null;
}

/**
 * The virtualised list: a spacer as tall as every line, and only the lines in sight (plus a
 * margin) in the DOM, so 100,000 lines cost what 100 do. While `follow` is on it sticks to the
 * bottom; scrolling up turns it off, scrolling back to the bottom turns it on again.
 */
export function LogLines({
  view,
  version,
  needle,
  currentRow,
  selectedNumber,
  follow,
  onFollowChange,
  target,
}: Props) {
  const ref = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [height, setHeight] = useState(600);
  const [fit, setFit] = useState<number | null>(null);
  const count = view.count;

  const following = useRef(follow);
  useLayoutEffect(() => {
    following.current = follow;
  });

  useEffect(() => {
    const el = ref.current;
    if (el === null) return;
    const observer = new ResizeObserver(() => setHeight(el.clientHeight));
    observer.observe(el);
    // As tall as the window leaves below the log's top (page scrolled to the top), so that a
    // followed log's newest line is on screen without scrolling the page. Measured again
    // whenever the page changes size: the stage graph above grows as the build goes on.
    const measure = () => {
      setFit(window.innerHeight - (el.getBoundingClientRect().top + window.scrollY) - 12);
      if (following.current) keepNewestInView(el);
    };
    measure();
    const page = new ResizeObserver(measure);
    page.observe(document.body);
    window.addEventListener('resize', measure);
    return () => {
      observer.disconnect();
      page.disconnect();
      window.removeEventListener('resize', measure);
    };
  }, []);

  // While following, the rows drawn are the last ones (see `top` below), not those at the
  // scroll position of the last render: storing the position after each scroll to the bottom
  // would render every frame twice (the rows of the old position, then the new ones), which is
  // what a fast log's time went to on a busy machine.
  useLayoutEffect(() => {
    const el = ref.current;
    if (el === null || !follow) return;
    keepNewestInView(el);
  }, [follow, count, version, height]);
  // Following ends where the log then is (the button, a search hit, the build's end).
  useLayoutEffect(() => {
    const el = ref.current;
    if (el !== null && !follow) setScrollTop(el.scrollTop);
  }, [follow]);

  const reached = useRef<number | null>(null);
  const targetRow = target?.row ?? -1;
  const targetId = target?.id ?? null;
  useLayoutEffect(() => {
    const el = ref.current;
    if (el === null || targetId === null || targetRow < 0 || reached.current === targetId) return;
    reached.current = targetId;
    const top = targetRow * LINE_HEIGHT;
    if (top < el.scrollTop || top + LINE_HEIGHT > el.scrollTop + el.clientHeight) {
      el.scrollTop = Math.max(0, top - el.clientHeight / 2 + LINE_HEIGHT / 2);
    }
    setScrollTop(el.scrollTop);
  }, [targetId, targetRow]);

  const onScroll = (event: UIEvent<HTMLDivElement>) => {
    const el = event.currentTarget;
    const atBottom = el.scrollTop + el.clientHeight >= el.scrollHeight - LINE_HEIGHT * 1.5;
    // The scroll that following itself made changes nothing that is drawn.
    if (!(follow && atBottom)) setScrollTop(el.scrollTop);
    if (atBottom !== follow) onFollowChange(atBottom);
  };

  const top = follow ? Math.max(0, count * LINE_HEIGHT - height) : scrollTop;
  const first = Math.max(0, Math.floor(top / LINE_HEIGHT) - OVERSCAN);
  const last = Math.min(count, Math.ceil((top + height) / LINE_HEIGHT) + OVERSCAN);
  const lastNumber = count > 0 ? view.numberOf(view.line(count - 1)) : 1;
  const gutterCh = String(lastNumber).length + 2;
  const rows = [];
  for (let row = first; row < last; row++) {
    const line = view.line(row);
    const number = view.numberOf(line);
    rows.push(
      <LogRow
        key={line.seq}
        line={line}
        number={number}
        stepLabel={view.step === null ? stepLabel(view.buffer.steps[line.step] ?? '') : null}
        needle={needle}
        selected={number === selectedNumber}
        currentMatch={row === currentRow}
        gutterCh={gutterCh}
      />,
    );
  }

  return (
    <div
      ref={ref}
      className="log-scroll"
      onScroll={onScroll}
      tabIndex={0}
      role="log"
      aria-label={`Log, ${count} lines`}
      aria-live="off"
      data-testid="log"
      style={{
        height: `min(${fit !== null && fit >= MIN_FIT ? `${fit}px` : '70vh'}, 760px, ${Math.max(count, 6) * LINE_HEIGHT + 20}px)`,
      }}
    >
      <div className="log-spacer" style={{ height: count * LINE_HEIGHT }}>
        <div className="log-window" style={{ top: first * LINE_HEIGHT }}>
          {rows}
        </div>
      </div>
    </div>
  );
}
