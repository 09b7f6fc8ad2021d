const format = new Intl.DateTimeFormat("en-US", {
  year: "numeric",
  month: "long",
  day: "numeric",
  timeZone: "UTC",
});

/** "November 30, 2026" for an ISO timestamp from the API. */
export function formatDate(iso: string): string {
  return format.format(new Date(iso));
}
