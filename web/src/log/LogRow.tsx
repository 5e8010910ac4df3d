import { memo } from 'react';
import { Link } from '../lib/router';
import { findAll, markRanges, parseAnsi, stripAnsi, type Segment } from './ansi';
import type { Line } from './buffer';

export const LINE_HEIGHT = 20;

function className(segment: Segment): string | undefined {
  let name = '';
  if (segment.fg !== null) name += ` fg${segment.fg}`;
  if (segment.bg !== null) name += ` bg${segment.bg}`;
  if (segment.bold) name += ' b';
  if (segment.mark === true) name += ' hit';
  return name === '' ? undefined : name.slice(1);
}

interface RowProps {
  line: Line;
  number: number;
  /** `stage/step`, shown when all steps are listed together. */
  stepLabel: string | null;
  needle: string;
  selected: boolean;
  currentMatch: boolean;
  gutterCh: number;
}

/** One log line: a permalink number, then the text in its ANSI colours, search hits marked. */
export const LogRow = memo(function LogRow({
  line,
  number,
  stepLabel,
  needle,
  selected,
  currentMatch,
  gutterCh,
}: RowProps) {
  let segments = parseAnsi(line.text);
  if (needle !== '') segments = markRanges(segments, findAll(stripAnsi(line.text), needle), needle.length);
  const classes = ['line', `s-${line.stream}`];
  if (selected) classes.push('selected');
  if (currentMatch) classes.push('current');
  return (
    <div className={classes.join(' ')} style={{ height: LINE_HEIGHT }} data-n={number}>
      <Link
        to={`#L${number}`}
        className="ln"
        style={{ width: `${gutterCh}ch` }}
        aria-label={`Line ${number}`}
        tabIndex={-1}
      >
        {number}
      </Link>
      {stepLabel !== null && <span className="step-tag">{stepLabel}</span>}
      <span className="text">
        {segments.map((segment, i) => (
          <span key={i} className={className(segment)}>
            {segment.text}
          </span>
        ))}
      </span>
    </div>
  );
});
