/**
 * Which screen each role sees at each route (`#/<route>`; `""` is the role's main screen). Each screen's
 * code is its own chunk, loaded when first shown: the sign-in page and the shell load none of them.
 * A new screen is one line here, e.g. `insights: lazy(() => import("./insights").then((m) => m.InsightsScreen))`.
 */
import type { ConsoleConfig, Session } from "./api";
import { type Lazy, lazy } from "./kit/router";
import type { CoachingClient, Role } from "./protocol";
import type { Timelines } from "./store";

/** What every screen is given by the shell. */
export interface ScreenProps {
  client: CoachingClient;
  timelines: Timelines;
  config: ConsoleConfig;
  session: Session;
  /** The current bearer token (renewed while the screen is open; REST calls use it). */
  token: string;
}

export type Routes = { readonly "": Lazy<ScreenProps>; readonly [route: string]: Lazy<ScreenProps> };

const insights = lazy(() => import("./insights").then((m) => m.InsightsScreen));

export const SCREENS: Record<Role, Routes> = {
  supervisor: { "": lazy(() => import("./supervisor").then((m) => m.SupervisorScreen)), insights },
  agent: { "": lazy(() => import("./agent").then((m) => m.AgentScreen)) },
  customer: { "": lazy(() => import("./customer").then((m) => m.CustomerScreen)) },
  admin: { "": lazy(() => import("./admin").then((m) => m.AdminScreen)), insights },
};
