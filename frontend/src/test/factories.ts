// Test data in the API's own shapes: each factory returns a value of the type
// generated from openapi.json (src/api/types.ts), so a test's fixture is
// checked against the contract and never spelled out field by field.
//
// A factory spells out only the fields that cannot be null. Every nullable
// field of the schema starts as null, read from openapi.json itself, so a new
// nullable field in a response breaks no test; a new field that cannot be null
// is a compile error here, in one place (give it a default below).
// docs/contract.md: "Test fixtures follow the contract".
import spec from "../../../openapi.json";
import type { Article, ArticleListItem, Comment, Profile, User } from "../api/types";

type Property = { type?: string | string[] };
type Schema = { properties?: Record<string, Property> };
const schemas = spec.components.schemas as Record<string, Schema>;

/** The names of ``T``'s fields that may be null. */
type NullableKeys<T> = { [K in keyof T]-?: null extends T[K] ? K : never }[keyof T];
/** What a factory must give: every field that cannot be null; nullable ones are optional. */
type Defaults<T> = Omit<T, NullableKeys<T>> & Partial<Pick<T, NullableKeys<T>>>;

/** ``{field: null}`` for each nullable property of the named schema in openapi.json. */
function nulls(name: string): Record<string, null> {
  const schema = schemas[name];
  if (!schema) throw new Error(`openapi.json has no schema ${name}`);
  const nullable = Object.entries(schema.properties ?? {}).filter(([, property]) =>
    ([] as string[]).concat(property.type ?? []).includes("null"),
  );
  return Object.fromEntries(nullable.map(([field]) => [field, null]));
}

function factory<T>(name: string, defaults: () => Defaults<T>): (overrides?: Partial<T>) => T {
  return (overrides = {}) => ({ ...nulls(name), ...defaults(), ...overrides }) as T;
}

const WHEN = "2026-01-02T03:04:05.000Z";

export const makeUser = factory<User>("User", () => ({
  username: "ann",
  email: "ann@example.com",
  token: "jwt",
}));

export const makeProfile = factory<Profile>("Profile", () => ({
  username: "ann",
  following: false,
}));

export const makeArticleListItem = factory<ArticleListItem>("ArticleListItem", () => ({
  slug: "how-to-train-your-dragon",
  title: "How to train your dragon",
  description: "Ever wonder how?",
  tagList: ["dragons"],
  createdAt: WHEN,
  updatedAt: WHEN,
  favorited: false,
  favoritesCount: 0,
  author: makeProfile(),
}));

export const makeArticle = factory<Article>("Article", () => ({
  ...makeArticleListItem(),
  body: "You have to believe.",
}));

export const makeComment = factory<Comment>("Comment", () => ({
  id: 1,
  body: "Nice one.",
  createdAt: WHEN,
  updatedAt: WHEN,
  author: makeProfile(),
}));
