/** The customer's chat widget: one workitem, the customer view only (no coaching ever). */
import { useEffect } from "preact/hooks";
import { ErrorBar, useNewFeedback } from "./kit/feedback";
import { useObservable } from "./kit/observable";
import type { ScreenProps } from "./screens";
import { Composer, Timeline } from "./ui";

export function CustomerScreen({ client, timelines, session }: ScreenProps) {
  const workitemId = session.wid ?? "";
  useObservable(timelines);
  const feedback = useNewFeedback();
  useEffect(() => {
    if (workitemId) void feedback.run(client.track(workitemId));
  }, [client, workitemId]);
  // A customer token names its workitem (`wid`): without one there is nothing to show.
  if (!workitemId) return null;
  return (
    <main class="screen customer">
      <section class="chat-widget" aria-label="Chat with us">
        <header>
          <h2>Chat with us</h2>
          <p class="sub">Hi {session.name}, an agent will answer here.</p>
        </header>
        <ErrorBar feedback={feedback} />
        <Timeline entries={timelines.of(workitemId)} viewer="customer" name={() => ""} label="Conversation" />
        <Composer
          inputTestId="message-input"
          sendTestId="message-send"
          label="Your message"
          placeholder="Type your message"
          onSend={(text) => feedback.run(client.send("message.send", { workitemId, text }))}
        />
      </section>
    </main>
  );
}
