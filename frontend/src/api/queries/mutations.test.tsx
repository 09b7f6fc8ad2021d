import type { QueryClient } from "@tanstack/react-query";
import { act, cleanup, renderHook, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import type { ReactNode } from "react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { FavoriteButton } from "../../components/FavoriteButton";
import { Editor } from "../../pages/Editor";
import { setBaseUrl } from "../client";
import { makeArticle, makeProfile, makeUser } from "../../test/factories";
import { providers, renderRoutes, testQueryClient } from "../../test/render";
import type { Article } from "../types";
import { keys, useArticle, useSaveArticle, useUpdateSettings } from "./index";

const ann = makeUser({ username: "ann", email: "ann@example.com", token: "jwt-1", bio: "Old bio" });

function article(slug: string, body = "Dragons fly."): Article {
  return makeArticle({
    slug,
    title: slug,
    description: "About dragons",
    body,
    tagList: [],
    createdAt: "2026-01-01T00:00:00.000Z",
    updatedAt: "2026-01-01T00:00:00.000Z",
    author: makeProfile({ username: "ann" }),
  });
}

type Route = (request: Request) => { status: number; body: unknown; headers?: Record<string, string> };

/** A fake API: `routes["PUT /api/user"]` answers that request; every request is recorded. */
function serve(routes: Record<string, Route>) {
  const requests: Request[] = [];
  const fetch = vi.fn(async (request: Request) => {
    requests.push(request.clone());
    const route = routes[`${request.method} ${new URL(request.url).pathname}`];
    const { status, body, headers = {} } = route ? route(request) : { status: 404, body: { errors: { body: ["not found"] } } };
    return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });
  });
  vi.stubGlobal("fetch", fetch);
  setBaseUrl("http://conduit.test"); // the client picks up the stubbed fetch
  return requests;
}

function signedIn(): { queryClient: QueryClient; wrapper: (props: { children: ReactNode }) => ReactNode } {
  localStorage.setItem("conduit.token", ann.token);
  const queryClient = testQueryClient(30_000);
  queryClient.setQueryData(keys.user, ann);
  return { queryClient, wrapper: providers(queryClient) };
}

beforeEach(() => localStorage.clear());
afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe("saving the settings", () => {
  it("rewrites the cached profile and marks the articles, which embed their author, stale", async () => {
    serve({ "PUT /api/user": () => ({ status: 200, body: { user: { ...ann, bio: "New bio" } } }) });
    const { queryClient, wrapper } = signedIn();
    queryClient.setQueryData(keys.profile("ann"), makeProfile({ username: "ann", bio: "Old bio" }));
    queryClient.setQueryData(keys.articleList({ kind: "global" }, 1), { articles: [], articlesCount: 0 });
    const { result } = renderHook(() => useUpdateSettings(), { wrapper });

    await act(() => result.current.mutateAsync({ bio: "New bio" }));

    expect(queryClient.getQueryData(keys.profile("ann"))).toMatchObject({ bio: "New bio" });
    expect(queryClient.getQueryState(keys.articleList({ kind: "global" }, 1))?.isInvalidated).toBe(true);
    expect(queryClient.getQueryData(keys.user)).toMatchObject({ bio: "New bio" });
  });

  it("drops the profile under a username given up", async () => {
    serve({ "PUT /api/user": () => ({ status: 200, body: { user: { ...ann, username: "anne" } } }) });
    const { queryClient, wrapper } = signedIn();
    queryClient.setQueryData(keys.profile("ann"), makeProfile({ username: "ann" }));
    const { result } = renderHook(() => useUpdateSettings(), { wrapper });

    await act(() => result.current.mutateAsync({ username: "anne" }));

    expect(queryClient.getQueryData(keys.profile("ann"))).toBeUndefined();
    expect(queryClient.getQueryData(keys.profile("anne"))).toMatchObject({ username: "anne" });
  });
});

describe("saving an article", () => {
  it("sends the ETag it was read with as If-Match", async () => {
    const requests = serve({ "PUT /api/articles/dragons": () => ({ status: 200, body: { article: article("dragons") } }) });
    const { wrapper } = signedIn();
    const { result } = renderHook(() => useSaveArticle({ slug: "dragons", etag: '"v1"' }), { wrapper });

    await act(() => result.current.mutateAsync({ title: "dragons", description: "d", body: "b" }));

    const put = requests.find((request) => request.method === "PUT");
    expect(put?.headers.get("If-Match")).toBe('"v1"');
  });

  it("under a new title drops the old slug's reads instead of refetching them", async () => {
    const requests = serve({
      "PUT /api/articles/dragons": () => ({ status: 200, body: { article: article("wyverns") } }),
    });
    const { queryClient, wrapper } = signedIn();
    queryClient.setQueryData(keys.article("dragons"), article("dragons"));
    queryClient.setQueryData(keys.comments("dragons"), []);
    const shown = renderHook(() => useArticle("dragons"), { wrapper }); // a page still showing it
    const { result } = renderHook(() => useSaveArticle({ slug: "dragons", etag: null }), { wrapper });

    await act(() => result.current.mutateAsync({ title: "Wyverns", description: "d", body: "b" }));

    expect(queryClient.getQueryData(keys.article("dragons"))).toBeUndefined();
    expect(queryClient.getQueryData(keys.comments("dragons"))).toBeUndefined();
    expect(queryClient.getQueryData(keys.article("wyverns"))).toMatchObject({ slug: "wyverns" });
    shown.unmount();
    expect(requests.filter((request) => request.method === "GET").map((request) => request.url)).toEqual([]);
  });
});

describe("the editor", () => {
  function renderEditor(slug: string) {
    const { queryClient } = signedIn();
    renderRoutes(
      [
        { path: "/editor/:slug", element: <Editor /> },
        { path: "/article/:slug", element: <p>Article page</p> },
      ],
      `/editor/${slug}`,
      queryClient,
    );
  }

  it("publishes a new article once however fast Publish is clicked twice", async () => {
    const requests = serve({
      "POST /api/articles": () => ({ status: 201, body: { article: article("twice") } }),
    });
    const { queryClient } = signedIn();
    renderRoutes(
      [
        { path: "/editor", element: <Editor /> },
        { path: "/article/:slug", element: <p>Article page</p> },
      ],
      "/editor",
      queryClient,
    );
    const events = userEvent.setup();
    await events.type(screen.getByLabelText("Article Title"), "Twice");
    const publish = screen.getByRole("button", { name: "Publish Article" });

    await events.dblClick(publish);

    await screen.findByText("Article page");
    expect(requests.filter((request) => request.method === "POST")).toHaveLength(1);
  });

  it("on a 412 says the article changed, and reloads the current version on request", async () => {
    let version = 1;
    const requests = serve({
      "GET /api/articles/dragons": () => ({
        status: 200,
        body: { article: article("dragons", version === 1 ? "Dragons fly." : "Changed in another tab.") },
        headers: { ETag: `"v${version}"` },
      }),
      "PUT /api/articles/dragons": () => ({
        status: 412,
        body: { errors: { "If-Match": ["does not match the current representation"] } },
      }),
    });
    renderEditor("dragons");
    const events = userEvent.setup();
    const body = await screen.findByLabelText("Write your article (in markdown)");
    expect((body as HTMLTextAreaElement).value).toBe("Dragons fly.");
    version = 2; // another tab saves

    await events.type(body, " Mine.");
    await events.click(screen.getByRole("button", { name: "Publish Article" }));

    expect((await screen.findByRole("alert")).textContent).toContain("This article changed since you opened it");
    expect(requests.find((request) => request.method === "PUT")?.headers.get("If-Match")).toBe('"v1"');
    expect(screen.queryByText(/If-Match/)).toBeNull();

    await events.click(screen.getByRole("button", { name: "Reload the article" }));

    await waitFor(() =>
      expect((screen.getByLabelText("Write your article (in markdown)") as HTMLTextAreaElement).value).toBe(
        "Changed in another tab.",
      ),
    );
    expect(screen.queryByRole("alert")).toBeNull();
  });
});

describe("a one-click action that fails", () => {
  it("says why beside its button instead of doing nothing", async () => {
    serve({
      "POST /api/articles/gone/favorite": () => ({ status: 404, body: { errors: { article: ["not found"] } } }),
    });
    const { queryClient } = signedIn();
    renderRoutes([{ path: "/", element: <FavoriteButton article={article("gone")} /> }], "/", queryClient);

    await userEvent.setup().click(screen.getByRole("button", { name: /Favorite Article/ }));

    expect((await screen.findByRole("alert")).textContent).toBe("Could not favorite: article not found");
  });
});
