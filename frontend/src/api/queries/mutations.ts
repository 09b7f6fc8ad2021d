// Writes, each owning its cache rules: which cached reads it rewrites with the
// answer, which it marks stale (refetched now if shown, else when next shown)
// and which it drops. Pages pass only what happens next (`mutate(v, { onSuccess })`,
// e.g. where to navigate): after a write, no page shows what the write changed.
import { useMutation, useQueryClient, type QueryClient } from "@tanstack/react-query";
import { useSession } from "../../session/context";
import {
  createArticle,
  createArticleComment,
  createArticleFavorite,
  createUser,
  deleteArticle,
  deleteArticleComment,
  deleteArticleFavorite,
  followUserByUsername,
  login,
  unfollowUserByUsername,
  updateArticle,
  updateCurrentUser,
  type RequestBody,
} from "../client";
import type { Article, ArticleListItem, Comment, Profile, User } from "../types";
import { keys } from "./keys";

export type ArticleFields = RequestBody<"/api/articles", "post">["article"];
export type UserChanges = RequestBody<"/api/user", "put">["user"];

/**
 * Drops every cached read of the article under `slug` (it, its comments, the
 * editor's copy) without refetching them: it was deleted, or it lives under a
 * new slug now, and the old one answers 404.
 */
export function forgetArticle(queryClient: QueryClient, slug: string): void {
  queryClient.removeQueries({ queryKey: keys.article(slug) });
  queryClient.removeQueries({ queryKey: keys.articleToEdit(slug) });
  queryClient.removeQueries({ queryKey: keys.comments(slug) });
}

/** Sign in (`mode="login"`) or sign up: the session drops what the previous viewer saw. */
export function useAuthenticate(mode: "login" | "register") {
  const { signIn } = useSession();
  return useMutation({
    mutationFn: (fields: { username: string; email: string; password: string }) =>
      mode === "register"
        ? createUser(fields)
        : login({ email: fields.email, password: fields.password }),
    onSuccess: ({ user }) => signIn(user),
  });
}

/**
 * Publish a new article, or save one being edited. `editing` is the article as
 * the editor loaded it: its slug and `ETag`, sent as `If-Match`, so a save over
 * a change made since (in another tab) fails with 412 instead of undoing it.
 *
 * The answer replaces the cached article; lists and tags go stale; a new title
 * (a new slug) drops the old slug's reads instead of refetching them into 404s.
 */
export function useSaveArticle(editing?: { slug: string; etag: string | null }) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (fields: ArticleFields) =>
      editing ? updateArticle(editing.slug, fields, editing.etag) : createArticle(fields),
    onSuccess: async ({ article: saved }) => {
      if (editing && editing.slug !== saved.slug) forgetArticle(queryClient, editing.slug);
      queryClient.setQueryData(keys.article(saved.slug), saved);
      await Promise.all([
        queryClient.invalidateQueries({ queryKey: keys.articleLists }),
        queryClient.invalidateQueries({ queryKey: keys.tags }),
      ]);
    },
  });
}

/** Delete an article (`mutate(slug)`): its reads are dropped; lists and tags go stale. */
export function useDeleteArticle() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (slug: string) => deleteArticle(slug),
    onSuccess: async (_answer, slug) => {
      forgetArticle(queryClient, slug);
      await Promise.all([
        queryClient.invalidateQueries({ queryKey: keys.articleLists }),
        queryClient.invalidateQueries({ queryKey: keys.tags }),
      ]);
    },
  });
}

/** Comment on the article under `slug` (`mutate(body)`): the new comment heads its cached list. */
export function useAddComment(slug: string) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (body: string) => createArticleComment(slug, { body }),
    onSuccess: ({ comment }) => {
      queryClient.setQueryData<Comment[]>(keys.comments(slug), (comments = []) => [comment, ...comments]);
    },
  });
}

/** Delete a comment (`mutate(id)`): it leaves the cached list. */
export function useDeleteComment(slug: string) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (id: number) => deleteArticleComment(slug, id),
    onSuccess: (_answer, id) => {
      queryClient.setQueryData<Comment[]>(keys.comments(slug), (comments = []) =>
        comments.filter((comment) => comment.id !== id),
      );
    },
  });
}

/**
 * Favorite or unfavorite (`mutate(article)`, by its current `favorited`): the
 * answer replaces the cached article; lists (counts, "favorited by") go stale.
 */
export function useToggleFavorite() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (article: Article | ArticleListItem) =>
      article.favorited ? deleteArticleFavorite(article.slug) : createArticleFavorite(article.slug),
    onSuccess: ({ article: updated }) => {
      queryClient.setQueryData(keys.article(updated.slug), updated);
      return queryClient.invalidateQueries({ queryKey: keys.articleLists });
    },
  });
}

/**
 * Follow or unfollow (`mutate(profile)`, by its current `following`): the
 * answer replaces the cached profile; articles and comments, which embed their
 * author's `following`, and the feed go stale.
 */
export function useToggleFollow() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (profile: Profile) =>
      profile.following ? unfollowUserByUsername(profile.username) : followUserByUsername(profile.username),
    onSuccess: async ({ profile: updated }) => {
      queryClient.setQueryData(keys.profile(updated.username), updated);
      await Promise.all([
        queryClient.invalidateQueries({ queryKey: keys.articles }),
        queryClient.invalidateQueries({ queryKey: keys.allComments }),
      ]);
    },
  });
}

/**
 * Save the settings (`mutate(changes)`, only the fields that changed): the
 * session takes the new user and token; the user's profile is rewritten with
 * the answer (a new username drops the old name's); articles and comments,
 * which embed their author's name, bio and image, go stale.
 */
export function useUpdateSettings() {
  const queryClient = useQueryClient();
  const { update } = useSession();
  return useMutation({
    mutationFn: (changes: UserChanges) => updateCurrentUser(changes),
    onSuccess: async ({ user: updated }) => {
      const previous = queryClient.getQueryData<User | null>(keys.user);
      update(updated);
      if (previous && previous.username !== updated.username) {
        queryClient.removeQueries({ queryKey: keys.profile(previous.username), exact: true });
      }
      queryClient.setQueryData<Profile>(keys.profile(updated.username), (profile) => ({
        username: updated.username,
        bio: updated.bio,
        image: updated.image,
        following: profile?.following ?? false,
      }));
      await Promise.all([
        queryClient.invalidateQueries({ queryKey: keys.articles }),
        queryClient.invalidateQueries({ queryKey: keys.allComments }),
      ]);
    },
  });
}
