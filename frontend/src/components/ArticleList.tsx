import { Link, useSearchParams } from "react-router";
import { useArticleList } from "../api/queries";
import { pageCount, pageLinks, parsePage, type ArticleFilter } from "../lib/articleList";
import { ArticleMeta } from "./ArticleMeta";
import { FavoriteButton } from "./FavoriteButton";
import { TagList } from "./TagList";

/** One page of a list of articles, with links to the others (`?page=`). */
export function ArticleList({ filter, empty }: { filter: ArticleFilter; empty: string }) {
  const [params] = useSearchParams();
  const page = parsePage(params.get("page"));
  const { data, isPending, isError } = useArticleList(filter, page);

  if (isPending) return <div className="article-preview">Loading articles…</div>;
  if (isError) return <div className="article-preview error-messages">Could not load articles.</div>;
  const { articles, articlesCount } = data;
  if (articles.length === 0) return <div className="article-preview">{empty}</div>;

  return (
    <>
      {articles.map((article) => (
        <article className="article-preview" key={article.slug}>
          <ArticleMeta article={article}>
            <FavoriteButton article={article} compact />
          </ArticleMeta>
          <Link to={`/article/${encodeURIComponent(article.slug)}`} className="preview-link">
            <h1>{article.title}</h1>
            <p>{article.description}</p>
            <span>Read more...</span>
            <TagList tags={article.tagList} />
          </Link>
        </article>
      ))}
      <Pagination current={page} total={pageCount(articlesCount)} />
    </>
  );
}

function Pagination({ current, total }: { current: number; total: number }) {
  const [params] = useSearchParams();
  if (total <= 1) return null;
  const href = (page: number) => {
    const next = new URLSearchParams(params);
    if (page === 1) next.delete("page");
    else next.set("page", String(page));
    const query = next.toString();
    return query ? `?${query}` : "?";
  };
  return (
    <nav aria-label="Pages">
      <ul className="pagination">
        {pageLinks(current, total).map((page, index) =>
          page === null ? (
            <li className="page-item disabled" key={`gap-${index}`}>
              <span className="page-link">…</span>
            </li>
          ) : (
            <li className={`page-item${page === current ? " active" : ""}`} key={page}>
              <Link
                className="page-link"
                to={href(page)}
                aria-label={`Page ${page}`}
                aria-current={page === current ? "page" : undefined}
              >
                {page}
              </Link>
            </li>
          ),
        )}
      </ul>
    </nav>
  );
}
