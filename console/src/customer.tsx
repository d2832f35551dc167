/** The customer's chat widget: one workitem, the customer view only (no coaching ever). */
import { useEffect } from "preact/hooks";
import type { CoachingClient } from "./protocol";
import { type Timelines, useObservable } from "./store";
import { Composer, ErrorBar, Timeline, useErrors } from "./ui";

export function CustomerScreen(props: { client: CoachingClient; timelines: Timelines; workitemId: string; myName: string }) {
  const { client, timelines, workitemId } = props;
  useObservable(timelines);
  const [error, setError, clearError] = useErrors();
  useEffect(() => {
    client.track(workitemId).catch(setError);
  }, [client, workitemId]);
  return (
    <main class="screen customer">
      <section class="chat-widget" aria-label="Chat with us">
        <header>
          <h2>Chat with us</h2>
          <p class="sub">Hi {props.myName}, an agent will answer here.</p>
        </header>
        <ErrorBar message={error} onClose={clearError} />
        <Timeline entries={timelines.of(workitemId)} viewer="customer" name={() => ""} label="Conversation" />
        <Composer
          inputTestId="message-input"
          sendTestId="message-send"
          label="Your message"
          placeholder="Type your message"
          onSend={(text) => client.request("message.send", { workitemId, text }).catch(setError)}
        />
      </section>
    </main>
  );
}
