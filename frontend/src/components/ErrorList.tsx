import { errorMessages, splitFieldErrors } from "../api/errors";

/** Messages that belong to no single field, above the form. */
export function ErrorList({ messages }: { messages: string[] }) {
  if (messages.length === 0) return null;
  return (
    <ul className="error-messages" role="alert">
      {messages.map((message) => (
        <li key={message}>{message}</li>
      ))}
    </ul>
  );
}

/** Why a one-click action (favorite, follow) failed, beside its button: it changed nothing. */
export function ActionError({ action, error }: { action: string; error: unknown }) {
  const { other } = splitFieldErrors(errorMessages(error), []);
  return (
    <span className="action-error" role="alert">
      Could not {action}: {other.join("; ")}
    </span>
  );
}
