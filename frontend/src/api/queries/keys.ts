import type { ArticleFilter } from "../../lib/articleList";

/** Every cache key in one place, so mutations invalidate what they change. */
export const keys = {
  user: ["user"] as const,
  tags: ["tags"] as const,
  articles: ["articles"] as const,
  articleLists: ["articles", "list"] as const,
  articleList: (filter: ArticleFilter, page: number) => ["articles", "list", filter, page] as const,
  article: (slug: string) => ["articles", "one", slug] as const,
  /** The article the editor loaded, with its `ETag` (sent back as `If-Match`). */
  articleToEdit: (slug: string) => ["articles", "edit", slug] as const,
  profiles: ["profiles"] as const,
  allComments: ["comments"] as const,
  comments: (slug: string) => ["comments", slug] as const,
  profile: (username: string) => ["profiles", username] as const,
};
