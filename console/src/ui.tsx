import type { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import { ApiError } from './api';
import { VERDICT_WORDS, type Verdict } from './words';

/** What went wrong, said once to screen readers (role=alert) and shown beside the form. */
export function Problem({ error }: { error: unknown }) {
  if (!error) return null;
  const text = error instanceof ApiError ? error.message : 'Something went wrong.';
  return (
    <p class="problem" role="alert">
      {text}
    </p>
  );
}

export function VerdictBadge({ verdict }: { verdict: Verdict }) {
  return <span class={`verdict verdict-${verdict}`}>{VERDICT_WORDS[verdict] ?? verdict}</span>;
}

/** A panel: its heading takes the focus when it opens, so keyboard and screen reader users land in it. */
export function Panel({ title, children }: { title: string; children: ComponentChildren }) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus(), [title]);
  return (
    <section class="panel" aria-labelledby="panel-title">
      <h2 id="panel-title" tabIndex={-1} ref={heading}>
        {title}
      </h2>
      {children}
    </section>
  );
}

/** A field's own problem, linked to it with aria-describedby (`id`). */
export function FieldProblem({ id, message }: { id: string; message: string | undefined }) {
  if (!message) return null;
  return (
    <span class="field-problem" id={id}>
      {message}
    </span>
  );
}

/** A JSON value shown as text (audit before/after): never markup. */
export function Json({ value }: { value: unknown }) {
  if (value === undefined || value === null) return <span class="muted">none</span>;
  return <pre class="json">{JSON.stringify(value, null, 2)}</pre>;
}
