import { describe, expect, it } from "vitest";
import { articleRequest, pageCount, pageLinks, parsePage } from "./articleList";

describe("articleRequest", () => {
  it("asks the feed for the followed authors' articles", () => {
    expect(articleRequest({ kind: "feed" }, 1)).toEqual({
      path: "/api/articles/feed",
      query: { limit: 10, offset: 0 },
    });
  });

  it("filters the global list by tag when one is chosen", () => {
    expect(articleRequest({ kind: "global", tag: "flask" }, 3)).toEqual({
      path: "/api/articles",
      query: { limit: 10, offset: 20, tag: "flask" },
    });
    expect(articleRequest({ kind: "global" }, 1).query).toEqual({ limit: 10, offset: 0 });
  });

  it("lists a profile's own and favorited articles", () => {
    expect(articleRequest({ kind: "author", username: "ann" }, 2).query).toEqual({
      limit: 10,
      offset: 10,
      author: "ann",
    });
    expect(articleRequest({ kind: "favorited", username: "ann" }, 1).query).toEqual({
      limit: 10,
      offset: 0,
      favorited: "ann",
    });
  });
});

it("pageCount rounds up to whole pages", () => {
  expect([0, 1, 10, 11, 25].map(pageCount)).toEqual([0, 1, 1, 2, 3]);
});

it("parsePage accepts positive integers only", () => {
  expect(["3", null, "", "0", "-2", "1.5", "x"].map(parsePage)).toEqual([3, 1, 1, 1, 1, 1, 1]);
});

describe("pageLinks", () => {
  it("lists every page when there are few", () => {
    expect(pageLinks(1, 4)).toEqual([1, 2, 3, 4]);
  });

  it("elides pages far from the current one", () => {
    expect(pageLinks(10, 20)).toEqual([1, null, 8, 9, 10, 11, 12, null, 20]);
    expect(pageLinks(1, 20)).toEqual([1, 2, 3, null, 20]);
  });
});
