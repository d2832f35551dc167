/** Panels (a labelled landmark with its heading) and count badges. */
import type { ComponentChildren } from "preact";

export interface PanelProps {
  /** The landmark's name for assistive technology (default: the title). */
  label?: string;
  title?: ComponentChildren;
  /** Heading level of the title (2 in a screen's columns, 3 inside a sidebar). */
  level?: 2 | 3;
  /** `section` (default), or `aside` / `main` for a screen's column. */
  as?: "section" | "aside" | "main";
  class?: string;
  testId?: string;
  children?: ComponentChildren;
}

export function Panel({ label, title, level = 2, as: Tag = "section", class: className, testId, children }: PanelProps) {
  const Heading = level === 2 ? "h2" : "h3";
  return (
    <Tag class={className} aria-label={label ?? (typeof title === "string" ? title : undefined)} data-testid={testId}>
      {title !== undefined && <Heading>{title}</Heading>}
      {children}
    </Tag>
  );
}

/** A count in a red pill, with words for screen readers (`3 unread`); nothing at zero. */
export function Badge({ count, label, testId }: { count: number; label?: string; testId?: string }) {
  if (count <= 0) return null;
  return (
    <span class="badge" data-testid={testId}>
      {count}
      {label && <span class="visually-hidden"> {label}</span>}
    </span>
  );
}
