// The API answers every error in one envelope: {"errors": {"<field or body>": ["message"]}}.
// Forms show a field's messages beside that field and the rest above the form.
import { ApiError } from "./client";
import type { ErrorResponse } from "./types";

export type FieldErrors = ErrorResponse["errors"];

function isErrorResponse(body: unknown): body is ErrorResponse {
  if (typeof body !== "object" || body === null || !("errors" in body)) return false;
  const { errors } = body;
  return (
    typeof errors === "object" &&
    errors !== null &&
    Object.values(errors).every(
      (messages) => Array.isArray(messages) && messages.every((m) => typeof m === "string"),
    )
  );
}

/** The envelope's messages, or one `body` message when the failure had none. */
export function errorMessages(error: unknown): FieldErrors {
  if (error instanceof ApiError) {
    if (isErrorResponse(error.body)) return error.body.errors;
    return { body: [`the server answered ${error.status}`] };
  }
  return { body: ["the server could not be reached"] };
}

/** Splits messages into those for the form's own fields and the others. */
export function splitFieldErrors<F extends string>(
  errors: FieldErrors,
  fields: readonly F[],
): { byField: Partial<Record<F, string[]>>; other: string[] } {
  const byField: Partial<Record<F, string[]>> = {};
  const other: string[] = [];
  for (const [field, messages] of Object.entries(errors)) {
    if ((fields as readonly string[]).includes(field)) byField[field as F] = messages;
    else other.push(...messages.map((message) => (field === "body" ? message : `${field} ${message}`)));
  }
  return { byField, other };
}
