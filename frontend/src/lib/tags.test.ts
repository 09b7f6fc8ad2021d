import { describe, expect, it } from "vitest";
import { addTags, removeTag } from "./tags";

describe("addTags", () => {
  it("adds a trimmed tag", () => {
    expect(addTags(["react"], "  flask ")).toEqual(["react", "flask"]);
  });

  it("splits on commas", () => {
    expect(addTags([], "a, b,c")).toEqual(["a", "b", "c"]);
  });

  it("ignores empty and repeated tags", () => {
    expect(addTags(["a"], " , a, b, b")).toEqual(["a", "b"]);
  });
});

it("removeTag removes only that tag", () => {
  expect(removeTag(["a", "b", "c"], "b")).toEqual(["a", "c"]);
});
