/** Longest stretch of bulk work between two turns of the event loop. */
const SLICE_MS = 4;

/**
 * Bulk registry work (reading an import, checking it, applying it, writing it out) runs in
 * slices, handing the event loop back between them, so that calls keep being scored while an
 * administrator moves a 20 MB registry file. `tick()` yields (setImmediate: after pending I/O,
 * so queued calls are answered) once `budgetMs` of work has been done since the last time.
 */
export class Slicer {
  private last = performance.now();
  constructor(private readonly budgetMs = SLICE_MS) {}

  /** Cheap when there is budget left; call it often. */
  async tick(): Promise<void> {
    if (performance.now() - this.last < this.budgetMs) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.last = performance.now();
  }
}

/** `items` as JSON texts joined by `separator`, in parts of a few hundred, made in slices. */
export async function jsonInSlices(items: readonly unknown[], separator: string): Promise<string[]> {
  const slicer = new Slicer();
  const parts: string[] = [];
  for (let i = 0; i < items.length; i += 500) {
    parts.push(items.slice(i, i + 500).map((item) => JSON.stringify(item)).join(separator));
    await slicer.tick();
  }
  return parts;
}
