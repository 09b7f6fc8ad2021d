// Typed Conduit API client. Every type below is derived from `paths`, which
// `npm run generate` produces from ../openapi.json; nothing is written by hand,
// so a change to the backend's contract shows up here as a `tsc` error.
import createClient, { type Middleware } from "openapi-fetch";
import type { paths } from "./schema";

type JsonContent<T> = T extends { content: { "application/json": infer B } } ? B : never;

/** JSON request body of an operation, e.g. `RequestBody<"/api/user", "put">`. */
export type RequestBody<P extends keyof paths, M extends keyof paths[P]> = paths[P][M] extends {
  requestBody?: infer RB;
}
  ? JsonContent<NonNullable<RB>>
  : never;

/** Query parameters of an operation, e.g. `Query<"/api/articles", "get">`. */
export type Query<P extends keyof paths, M extends keyof paths[P]> = paths[P][M] extends {
  parameters: { query?: infer Q };
}
  ? NonNullable<Q>
  : never;

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super(`Conduit API error ${status}`);
    this.name = "ApiError";
  }
}

let token: string | null = null;

/** Store the JWT from login/register; `null` logs out. */
export function setToken(jwt: string | null): void {
  token = jwt;
}

export function getToken(): string | null {
  return token;
}

export const authMiddleware: Middleware = {
  onRequest({ request }) {
    if (token !== null) request.headers.set("Authorization", `Token ${token}`);
    return request;
  },
};

/** Paths in the spec already start with `/api`, so baseUrl is the server origin. */
export function createConduitClient(baseUrl = "") {
  const client = createClient<paths>({ baseUrl });
  client.use(authMiddleware);
  return client;
}

let client = createConduitClient();

export function setBaseUrl(baseUrl: string): void {
  client = createConduitClient(baseUrl);
}

async function unwrap<T>(
  request: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  const { data, error, response } = await request;
  if (error !== undefined || !response.ok) throw new ApiError(response.status, error);
  return data as T;
}

// --- User and Authentication ---------------------------------------------

export const login = (user: RequestBody<"/api/users/login", "post">["user"]) =>
  unwrap(client.POST("/api/users/login", { body: { user } }));

export const createUser = (user: RequestBody<"/api/users", "post">["user"]) =>
  unwrap(client.POST("/api/users", { body: { user } }));

export const getCurrentUser = () => unwrap(client.GET("/api/user"));

export const updateCurrentUser = (user: RequestBody<"/api/user", "put">["user"]) =>
  unwrap(client.PUT("/api/user", { body: { user } }));

// --- Profile ---------------------------------------------------------------

export const getProfileByUsername = (username: string) =>
  unwrap(client.GET("/api/profiles/{username}", { params: { path: { username } } }));

export const followUserByUsername = (username: string) =>
  unwrap(client.POST("/api/profiles/{username}/follow", { params: { path: { username } } }));

export const unfollowUserByUsername = (username: string) =>
  unwrap(client.DELETE("/api/profiles/{username}/follow", { params: { path: { username } } }));

// --- Articles --------------------------------------------------------------

export const getArticlesFeed = (query: Query<"/api/articles/feed", "get"> = {}) =>
  unwrap(client.GET("/api/articles/feed", { params: { query } }));

export const getArticles = (query: Query<"/api/articles", "get"> = {}) =>
  unwrap(client.GET("/api/articles", { params: { query } }));

export const createArticle = (article: RequestBody<"/api/articles", "post">["article"]) =>
  unwrap(client.POST("/api/articles", { body: { article } }));

export const getArticle = (slug: string) =>
  unwrap(client.GET("/api/articles/{slug}", { params: { path: { slug } } }));

/** The article with the `ETag` its answer carried (`null` if none), to send back as `If-Match`. */
export async function getArticleWithEtag(slug: string) {
  const { data, error, response } = await client.GET("/api/articles/{slug}", {
    params: { path: { slug } },
  });
  if (error !== undefined || !response.ok || data === undefined) {
    throw new ApiError(response.status, error);
  }
  return { article: data.article, etag: response.headers.get("ETag") };
}

/**
 * Saves the changes; with `ifMatch` (the `ETag` of the article as it was read),
 * only if nobody changed it since: otherwise a 412 and nothing is written.
 */
export const updateArticle = (
  slug: string,
  article: RequestBody<"/api/articles/{slug}", "put">["article"],
  ifMatch?: string | null,
) =>
  unwrap(
    client.PUT("/api/articles/{slug}", {
      params: { path: { slug }, header: ifMatch ? { "If-Match": ifMatch } : undefined },
      body: { article },
    }),
  );

export async function deleteArticle(slug: string): Promise<void> {
  await unwrap(client.DELETE("/api/articles/{slug}", { params: { path: { slug } } }));
}

// --- Comments --------------------------------------------------------------

export const getArticleComments = (slug: string) =>
  unwrap(client.GET("/api/articles/{slug}/comments", { params: { path: { slug } } }));

export const createArticleComment = (
  slug: string,
  comment: RequestBody<"/api/articles/{slug}/comments", "post">["comment"],
) =>
  unwrap(
    client.POST("/api/articles/{slug}/comments", { params: { path: { slug } }, body: { comment } }),
  );

export async function deleteArticleComment(slug: string, id: number): Promise<void> {
  await unwrap(
    client.DELETE("/api/articles/{slug}/comments/{id}", { params: { path: { slug, id } } }),
  );
}

// --- Favorites -------------------------------------------------------------

export const createArticleFavorite = (slug: string) =>
  unwrap(client.POST("/api/articles/{slug}/favorite", { params: { path: { slug } } }));

export const deleteArticleFavorite = (slug: string) =>
  unwrap(client.DELETE("/api/articles/{slug}/favorite", { params: { path: { slug } } }));

// --- Tags ------------------------------------------------------------------

export const getTags = () => unwrap(client.GET("/api/tags"));
