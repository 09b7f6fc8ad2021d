import type { ReactNode } from "react";
import { Link } from "react-router";
import type { Article, ArticleListItem } from "../api/types";
import { formatDate } from "../lib/dates";
import { Avatar } from "./Avatar";

export function profilePath(username: string): string {
  return `/profile/${encodeURIComponent(username)}`;
}

/** The author, the date, and the actions that fit where it is shown. */
export function ArticleMeta({
  article,
  children,
}: {
  article: Article | ArticleListItem;
  children?: ReactNode;
}) {
  const { author } = article;
  return (
    <div className="article-meta">
      <Link to={profilePath(author.username)} tabIndex={-1} aria-hidden="true">
        <Avatar image={author.image} />
      </Link>
      <div className="info">
        <Link to={profilePath(author.username)} className="author">
          {author.username}
        </Link>
        <time className="date" dateTime={article.createdAt}>
          {formatDate(article.createdAt)}
        </time>
      </div>
      {children}
    </div>
  );
}
