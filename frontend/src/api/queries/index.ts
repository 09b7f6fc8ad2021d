// Reads, cached by TanStack Query; the data's types are the generated schema's.
import { keepPreviousData, skipToken, useQuery } from "@tanstack/react-query";
import { articleRequest, type ArticleFilter } from "../../lib/articleList";
import {
  getArticle,
  getArticleComments,
  getArticles,
  getArticlesFeed,
  getProfileByUsername,
  getTags,
} from "../client";
import { keys } from "./keys";

export { keys };

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
