/** Small observable stores the screens render from (one re-render per change). */
import { useEffect, useState } from "preact/hooks";

export class Observable {
  private readonly listeners = new Set<() => void>();
  version = 0;
  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  changed(): void {
    this.version += 1;
    for (const listener of this.listeners) listener();
  }
  /** Make a change and tell the listeners once: `model.update(() => { model.unread = 0; })`. */
  update(change: () => void): void {
    change();
    this.changed();
  }
  protected get listening(): number {
    return this.listeners.size;
  }
}

/** Re-render the calling component whenever `store` changes. */
export function useObservable(store: Observable): number {
  const [, setVersion] = useState(store.version);
  useEffect(() => store.subscribe(() => setVersion(store.version)), [store]);
  return store.version;
}
