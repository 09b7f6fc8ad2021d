import { describe, expect, it } from "vitest";
import spec from "../../../openapi.json";
import { makeArticle, makeArticleListItem, makeComment, makeProfile, makeUser } from "./factories";

const schemas = spec.components.schemas as Record<string, { properties: Record<string, unknown>; required?: string[] }>;

describe("the factories", () => {
  it.each([
    ["User", makeUser],
    ["Profile", makeProfile],
    ["Article", makeArticle],
    ["ArticleListItem", makeArticleListItem],
    ["Comment", makeComment],
  ] as const)("give every field of %s in openapi.json, nullable ones as null", (name, make) => {
    const schema = schemas[name];
    expect(Object.keys(make()).sort()).toEqual(Object.keys(schema?.properties ?? {}).sort());
  });

  it("start nullable fields as null and take overrides", () => {
    expect(makeUser()).toMatchObject({ bio: null, image: null });
    expect(makeUser({ bio: "I write." }).bio).toBe("I write.");
    expect(makeArticle({ author: makeProfile({ username: "bo" }) }).author.username).toBe("bo");
  });
});
