/** The connection's state in the top bar (part of the shell, loaded up front). */
import { useEffect, useState } from "preact/hooks";
import type { CoachingClient, ConnectionState } from "./protocol";

export function useConnectionState(client: CoachingClient): ConnectionState {
  const [state, setState] = useState(client.state);
  useEffect(() => client.onState(setState), [client]);
  return state;
}

const STATE_TEXT: Record<ConnectionState, string> = {
  connecting: "connecting…",
  live: "live",
  reconnecting: "reconnecting…",
  closed: "offline",
};

export function ConnectionStatus({ client }: { client: CoachingClient }) {
  const state = useConnectionState(client);
  return (
    <span class={`status status-${state}`} data-testid="connection-status" role="status" aria-live="polite">
      <span class="dot" aria-hidden="true" />
      {STATE_TEXT[state]}
    </span>
  );
}

