import { expect, it } from "vitest";
import { formatDate } from "./dates";

it("formats an API timestamp as a long date, in UTC", () => {
  expect(formatDate("2026-11-30T23:59:00Z")).toBe("November 30, 2026");
  expect(formatDate("2026-01-01T00:00:00.000000+00:00")).toBe("January 1, 2026");
});
