/**
 * Screens whose code loads on demand, and the route in the address's fragment (`#/insights`).
 *
 * `lazy(() => import("./insights").then((m) => m.InsightsScreen))` makes esbuild put the screen in a
 * chunk of its own, fetched the first time the screen is shown. Routes live in the fragment, so every
 * route is the same `index.html` for the web server (S3 and CloudFront need no rewrite rule), and the
 * fragment never reaches a server or a `Referer`.
 */
import type { ComponentType, VNode } from "preact";
import { useEffect, useState } from "preact/hooks";
import { describeError } from "./feedback";

export interface Lazy<P> {
  (props: P): VNode | null;
  /** Start loading the code (or join the load under way); a failed load is tried again on the next call. */
  load(): Promise<ComponentType<P>>;
  /** Resolves the first time the code has arrived (after any number of failed tries). */
  readonly ready: Promise<ComponentType<P>>;
}

/** A component whose code is loaded on first render: "Loading…" until then, a retry button if it fails. */
export function lazy<P extends object>(importer: () => Promise<ComponentType<P>>): Lazy<P> {
  let loaded: ComponentType<P> | undefined;
  let pending: Promise<ComponentType<P>> | undefined;
  let arrived: (component: ComponentType<P>) => void = () => undefined;
  const ready = new Promise<ComponentType<P>>((resolve) => {
    arrived = resolve;
  });
  const load = () => {
    pending ??= importer().then(
      (component) => {
        loaded = component;
        arrived(component);
        return component;
      },
      (error: unknown) => {
        pending = undefined;
        throw error;
      },
    );
    return pending;
  };

  function LazyComponent(props: P) {
    const [, setArrived] = useState(false);
    const [failure, setFailure] = useState<unknown>(null);
    useEffect(() => {
      if (loaded || failure) return;
      let current = true;
      load().then(
        () => current && setArrived(true),
        (error: unknown) => current && setFailure(error ?? "unknown error"),
      );
      return () => {
        current = false;
      };
    }, [failure]);
    if (loaded) {
      const Loaded = loaded;
      return <Loaded {...props} />;
    }
    if (failure) {
      return (
        <div class="error-bar" role="alert">
          <span>Could not load this screen ({describeError(failure)}).</span>
          <button type="button" class="link" onClick={() => setFailure(null)}>
            Try again
          </button>
        </div>
      );
    }
    return <p class="loading">Loading…</p>;
  }
  return Object.assign(LazyComponent, { load, ready });
}

/** The route named by a fragment: `#/insights` → `insights`; no fragment (or `#`, `#/`) → `""`. */
export function routeOf(hash: string): string {
  return hash.replace(/^#\/?/, "").replace(/\/+$/, "");
}

/** The fragment that opens `route` (for `<a href>`). */
export function hrefOf(route: string): string {
  return `#/${route}`;
}

/** The current route, re-rendering the caller when the fragment changes (links, back and forward). */
export function useRoute(): string {
  const [route, setRoute] = useState(() => routeOf(location.hash));
  useEffect(() => {
    const changed = () => setRoute(routeOf(location.hash));
    addEventListener("hashchange", changed);
    return () => removeEventListener("hashchange", changed);
  }, []);
  return route;
}

/** The entry for `route`, or the default one (`""`) for a route this table does not know. */
export function pick<T>(routes: { readonly "": T; readonly [route: string]: T }, route: string): T {
  return Object.hasOwn(routes, route) ? (routes[route] as T) : routes[""];
}
