// Which articles a list shows, where they come from, and how they page.
import type { Query } from "../api/client";

export const PAGE_SIZE = 10;

export type ArticleFilter =
  | { kind: "feed" }
  | { kind: "global"; tag?: string }
  | { kind: "author"; username: string }
  | { kind: "favorited"; username: string };

export type ArticleRequest =
  | { path: "/api/articles/feed"; query: Query<"/api/articles/feed", "get"> }
  | { path: "/api/articles"; query: Query<"/api/articles", "get"> };

/** The request for one page (1-based) of a list. */
export function articleRequest(filter: ArticleFilter, page: number): ArticleRequest {
  const paging = { limit: PAGE_SIZE, offset: (Math.max(page, 1) - 1) * PAGE_SIZE };
  switch (filter.kind) {
    case "feed":
      return { path: "/api/articles/feed", query: paging };
    case "global":
      return { path: "/api/articles", query: filter.tag ? { ...paging, tag: filter.tag } : paging };
    case "author":
      return { path: "/api/articles", query: { ...paging, author: filter.username } };
    case "favorited":
      return { path: "/api/articles", query: { ...paging, favorited: filter.username } };
  }
}

export function pageCount(articlesCount: number): number {
  return Math.ceil(articlesCount / PAGE_SIZE);
}

/** The page number in a `?page=` value: a positive integer, else 1. */
export function parsePage(value: string | null): number {
  const page = Number(value);
  return Number.isInteger(page) && page >= 1 ? page : 1;
}

/**
 * The page links to show: the first, the last, and two either side of the
 * current one, with `null` where pages are left out.
 */
export function pageLinks(current: number, total: number): (number | null)[] {
  const links: (number | null)[] = [];
  for (let page = 1; page <= total; page++) {
    if (page === 1 || page === total || Math.abs(page - current) <= 2) links.push(page);
    else if (links[links.length - 1] !== null) links.push(null);
  }
  return links;
}
