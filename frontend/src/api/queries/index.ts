// Reads, cached by TanStack Query; the data's types are the generated schema's.
import { keepPreviousData, skipToken, useQuery } from "@tanstack/react-query";
import { articleRequest, type ArticleFilter } from "../../lib/articleList";
import {
  getArticle,
  getArticleComments,
  getArticleWithEtag,
  getArticles,
  getArticlesFeed,
  getProfileByUsername,
  getTags,
} from "../client";
import { keys } from "./keys";

export { keys };
export * from "./mutations";

export function useArticleList(filter: ArticleFilter, page: number) {
  return useQuery({
    queryKey: keys.articleList(filter, page),
    queryFn: () => {
      const request = articleRequest(filter, page);
      return request.path === "/api/articles/feed"
        ? getArticlesFeed(request.query)
        : getArticles(request.query);
    },
    placeholderData: keepPreviousData,
  });
}

/** The article, or nothing to load while there is no slug (a new article). */
export function useArticle(slug: string | undefined) {
  return useQuery({
    queryKey: keys.article(slug ?? ""),
    queryFn: slug === undefined ? skipToken : async () => (await getArticle(slug)).article,
  });
}

/**
 * The article to edit, always read afresh (never from the cache, and dropped
 * once the editor closes) with the `ETag` its answer carried: the editor sends
 * it back as `If-Match`, so a save cannot overwrite a change it never saw.
 */
export function useArticleToEdit(slug: string | undefined) {
  return useQuery({
    queryKey: keys.articleToEdit(slug ?? ""),
    queryFn: slug === undefined ? skipToken : () => getArticleWithEtag(slug),
    staleTime: 0,
    gcTime: 0,
  });
}

export function useComments(slug: string) {
  return useQuery({
    queryKey: keys.comments(slug),
    queryFn: async () => (await getArticleComments(slug)).comments,
  });
}

export function useTags() {
  return useQuery({ queryKey: keys.tags, queryFn: async () => (await getTags()).tags });
}

export function useProfile(username: string) {
  return useQuery({
    queryKey: keys.profile(username),
    queryFn: async () => (await getProfileByUsername(username)).profile,
  });
}
