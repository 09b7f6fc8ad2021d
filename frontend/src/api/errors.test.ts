import { describe, expect, it } from "vitest";
import { ApiError } from "./client";
import { errorMessages, splitFieldErrors } from "./errors";

describe("errorMessages", () => {
  it("reads the API's error envelope", () => {
    const error = new ApiError(422, { errors: { email: ["has already been taken"] } });
    expect(errorMessages(error)).toEqual({ email: ["has already been taken"] });
  });

  it("names the status when the body is not the envelope", () => {
    expect(errorMessages(new ApiError(502, "<html>Bad gateway</html>"))).toEqual({
      body: ["the server answered 502"],
    });
  });

  it("says the server could not be reached on a network failure", () => {
    expect(errorMessages(new TypeError("Failed to fetch"))).toEqual({
      body: ["the server could not be reached"],
    });
  });
});

describe("splitFieldErrors", () => {
  it("keeps the form's fields and words the rest for the list above the form", () => {
    const { byField, other } = splitFieldErrors(
      { email: ["is invalid"], body: ["credentials are invalid"], token: ["has expired"] },
      ["email", "password"] as const,
    );
    expect(byField).toEqual({ email: ["is invalid"] });
    expect(other).toEqual(["credentials are invalid", "token has expired"]);
  });
});
