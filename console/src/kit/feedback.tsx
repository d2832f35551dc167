/**
 * One place for what an action's outcome tells the user: the failure in an alert bar, the success as a
 * notice. Screens run their actions through {@link Feedback.run} instead of writing try/catch each time;
 * components below a screen reach its feedback through {@link useFeedback}.
 */
import { type ComponentChildren, createContext } from "preact";
import { useContext, useMemo } from "preact/hooks";
import { ProtocolError } from "../protocol";
import { Observable, useObservable } from "./observable";

const WHY: Record<string, string> = {
  forbidden: "not allowed",
  conflict: "not possible right now",
  not_found: "not found",
  invalid: "invalid request",
  disconnected: "not connected: try again in a moment",
  timeout: "no answer from the server",
};

/** A message for the user when an action fails. */
export function describeError(error: unknown): string {
  if (error instanceof ProtocolError) return `${error.action}: ${WHY[error.code] ?? error.code} (${error.message})`;
  return error instanceof Error ? error.message : String(error);
}

export interface FeedbackOptions {
  /**
   * Clear the error when a later action succeeds (toasts and notices of the coming panels). Without it
   * the error stays until it is dismissed or replaced by the next failure.
   */
  clearOnSuccess?: boolean;
}

/** The outcome of a screen's actions: the last failure (`error`) and the last success's `notice`. */
export class Feedback extends Observable {
  error = "";
  notice = "";
  constructor(readonly options: FeedbackOptions = {}) {
    super();
  }

  /**
   * Run an action (a promise, or a function returning one). A failure is shown, never thrown: the result
   * is then `undefined`. On success `notice`, when given, replaces the notice.
   */
  async run<T>(work: Promise<T> | (() => Promise<T>), notice?: string): Promise<T | undefined> {
    let result: T;
    try {
      result = await (typeof work === "function" ? work() : work);
    } catch (error) {
      this.fail(error);
      return undefined;
    }
    this.succeeded(notice);
    return result;
  }

  /** An action that runs on an event (a click, a submit): `onClick={feedback.action(() => …)}`. */
  action<A extends unknown[]>(work: (...args: A) => Promise<unknown>, notice?: string): (...args: A) => void {
    return (...args: A) => void this.run(() => work(...args), notice);
  }

  fail(error: unknown): void {
    this.update(() => {
      this.error = describeError(error);
    });
  }

  dismiss(): void {
    this.update(() => {
      this.error = "";
    });
  }

  private succeeded(notice?: string): void {
    const clear = this.options.clearOnSuccess === true && this.error !== "";
    if (notice === undefined && !clear) return;
    this.update(() => {
      if (notice !== undefined) this.notice = notice;
      if (clear) this.error = "";
    });
  }
}

const FeedbackContext = createContext<Feedback | null>(null);

/** A component's own feedback (made once), re-rendering it whenever the feedback changes. */
export function useNewFeedback(options?: FeedbackOptions): Feedback {
  const feedback = useMemo(() => new Feedback(options), []);
  useObservable(feedback);
  return feedback;
}

/** The feedback of the screen around this component. */
export function useFeedback(): Feedback {
  const feedback = useContext(FeedbackContext);
  if (!feedback) throw new Error("useFeedback() outside a <FeedbackScope>");
  return feedback;
}

export function FeedbackScope({ feedback, children }: { feedback: Feedback; children: ComponentChildren }) {
  return <FeedbackContext.Provider value={feedback}>{children}</FeedbackContext.Provider>;
}

/** The failure, in an alert with a dismiss button (nothing while there is none). */
export function ErrorBar({ feedback }: { feedback: Feedback }) {
  useObservable(feedback);
  if (!feedback.error) return null;
  return (
    <div class="error-bar" role="alert">
      <span>{feedback.error}</span>
      <button type="button" class="link" onClick={() => feedback.dismiss()} aria-label="Dismiss error">
        ✕
      </button>
    </div>
  );
}

/** The last success's notice, in a status region (always present, so it is announced when it changes). */
export function Notice({ feedback }: { feedback: Feedback }) {
  useObservable(feedback);
  return (
    <p class="notice" role="status">
      {feedback.notice}
    </p>
  );
}
