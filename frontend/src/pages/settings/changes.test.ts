import { describe, expect, it } from "vitest";
import { makeUser } from "../../test/factories";
import { settingsChanges, settingsForm } from "./changes";

const user = makeUser({ username: "ann", email: "ann@example.com" });

describe("settingsChanges", () => {
  it("sends nothing when nothing changed", () => {
    expect(settingsChanges(user, settingsForm(user))).toEqual({});
  });

  it("sends only the changed fields", () => {
    const form = { ...settingsForm(user), bio: "I write.", email: "ann@example.org" };
    expect(settingsChanges(user, form)).toEqual({ bio: "I write.", email: "ann@example.org" });
  });

  it("sends the password only when one is typed", () => {
    expect(settingsChanges(user, { ...settingsForm(user), password: "s3cret-pass" })).toEqual({
      password: "s3cret-pass",
    });
  });

  it("clears the bio and image with null", () => {
    const withBoth = { ...user, bio: "old", image: "https://example.com/a.png" };
    const form = { ...settingsForm(withBoth), bio: "", image: " " };
    expect(settingsChanges(withBoth, form)).toEqual({ bio: null, image: null });
  });
});
