/**
 * One clock for every live timer on the page: a single interval ticks once a second while anything
 * shows a timer, and stops when nothing does, so a hundred wait timers re-render together, once.
 */
import { useEffect, useState } from "preact/hooks";
import { Observable } from "./observable";

export interface Timers {
  now(): number;
  setInterval(tick: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

const browserTimers: Timers = {
  now: () => Date.now(),
  setInterval: (tick, ms) => setInterval(tick, ms),
  clearInterval: (handle) => clearInterval(handle as ReturnType<typeof setInterval>),
};

export class Clock extends Observable {
  /** Milliseconds since the epoch at the last tick (or when the first listener arrived). */
  now: number;
  private handle: unknown = null;
  constructor(
    private readonly timers: Timers = browserTimers,
    readonly periodMs = 1000,
  ) {
    super();
    this.now = timers.now();
  }

  override subscribe(listener: () => void): () => void {
    const stop = super.subscribe(listener);
    if (this.handle === null) {
      this.now = this.timers.now();
      this.handle = this.timers.setInterval(() => this.tick(), this.periodMs);
    }
    return () => {
      stop();
      if (this.listening === 0 && this.handle !== null) {
        this.timers.clearInterval(this.handle);
        this.handle = null;
      }
    };
  }

  /** The time of the last tick while the clock runs (every timer shows the same second), else now. */
  read(): number {
    return this.handle === null ? this.timers.now() : this.now;
  }

  /** True while the interval runs (someone shows a timer). */
  get running(): boolean {
    return this.handle !== null;
  }

  private tick(): void {
    this.now = this.timers.now();
    this.changed();
  }
}

/** The page's clock. */
export const clock = new Clock();

/** The time now, re-rendering the caller at every tick of `source`. */
export function useNow(source: Clock = clock): number {
  const [now, setNow] = useState(() => source.read());
  useEffect(() => {
    const stop = source.subscribe(() => setNow(source.now));
    setNow(source.now);
    return stop;
  }, [source]);
  return now;
}

/** `m:ss` under an hour, `h:mm:ss` from then on; negative spans (a skewed clock) count as zero. */
export function formatElapsed(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

/** A live "time since" (e.g. how long a customer has waited), ticking with the shared clock. */
export function Elapsed({ since, label, source = clock }: { since: string | number; label?: string; source?: Clock }) {
  const now = useNow(source);
  const start = typeof since === "number" ? since : Date.parse(since);
  if (Number.isNaN(start)) return null;
  return (
    <time class="elapsed" dateTime={new Date(start).toISOString()} title={label}>
      {formatElapsed(now - start)}
    </time>
  );
}
