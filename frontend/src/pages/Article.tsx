import { useState, type FormEvent } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { errorMessages, splitFieldErrors } from "../api/errors";
import { useAddComment, useArticle, useComments, useDeleteArticle, useDeleteComment } from "../api/queries";
import type { Article as ArticleData, Comment, User } from "../api/types";
import { ArticleMeta, profilePath } from "../components/ArticleMeta";
import { Avatar } from "../components/Avatar";
import { ErrorList } from "../components/ErrorList";
import { FavoriteButton } from "../components/FavoriteButton";
import { FollowButton } from "../components/FollowButton";
import { TagList } from "../components/TagList";
import { formatDate } from "../lib/dates";
import { renderMarkdown } from "../lib/markdown";
import { useSession } from "../session/context";

export function Article() {
  const { slug = "" } = useParams();
  const { data: article, isPending, isError } = useArticle(slug);
  if (isPending) return <div className="container page">Loading article…</div>;
  if (isError) return <div className="container page error-messages">This article does not exist.</div>;

  return (
    <div className="article-page">
      <div className="banner">
        <div className="container">
          <h1>{article.title}</h1>
          <ArticleActions article={article} />
        </div>
      </div>
      <div className="container page">
        <div className="row article-content">
          <div className="col-md-12">
            {/* Sanitised by DOMPurify: no script or event handler survives. */}
            <div className="article-body" dangerouslySetInnerHTML={{ __html: renderMarkdown(article.body) }} />
            <TagList tags={article.tagList} />
          </div>
        </div>
        <hr />
        <div className="article-actions">
          <ArticleActions article={article} />
        </div>
        <div className="row">
          <div className="col-xs-12 col-md-8 offset-md-2">
            <Comments slug={article.slug} />
          </div>
        </div>
      </div>
    </div>
  );
}

function ArticleActions({ article }: { article: ArticleData }) {
  const { user } = useSession();
  const navigate = useNavigate();
  const removal = useDeleteArticle();
  const mine = user !== null && user.username === article.author.username;
  return (
    <ArticleMeta article={article}>
      {mine ? (
        <>
          <Link className="btn btn-outline-secondary btn-sm" to={`/editor/${encodeURIComponent(article.slug)}`}>
            <i className="ion-edit" aria-hidden="true" /> Edit Article
          </Link>{" "}
          <button
            type="button"
            className="btn btn-outline-danger btn-sm"
            disabled={removal.isPending}
            onClick={() => removal.mutate(article.slug, { onSuccess: () => navigate("/") })}
          >
            <i className="ion-trash-a" aria-hidden="true" /> Delete Article
          </button>
        </>
      ) : (
        <>
          <FollowButton profile={article.author} />
          &nbsp;&nbsp;
          <FavoriteButton article={article} />
        </>
      )}
    </ArticleMeta>
  );
}

function Comments({ slug }: { slug: string }) {
  const { user } = useSession();
  const { data: comments, isPending, isError } = useComments(slug);
  return (
    <section aria-label="Comments">
      {user ? (
        <CommentForm slug={slug} user={user} />
      ) : (
        <p>
          <Link to="/login">Sign in</Link> or <Link to="/register">sign up</Link> to add comments on this
          article.
        </p>
      )}
      {isPending && <p>Loading comments…</p>}
      {isError && <p className="error-messages">Could not load the comments.</p>}
      {comments?.map((comment) => (
        <CommentCard key={comment.id} slug={slug} comment={comment} mine={user?.username === comment.author.username} />
      ))}
    </section>
  );
}

function CommentForm({ slug, user }: { slug: string; user: User }) {
  const [body, setBody] = useState("");
  const mutation = useAddComment(slug);
  const { other } = mutation.isError
    ? splitFieldErrors(errorMessages(mutation.error), [])
    : { other: [] };
  const submit = (event: FormEvent) => {
    event.preventDefault();
    mutation.mutate(body, { onSuccess: () => setBody("") });
  };
  return (
    <>
      <ErrorList messages={other} />
      <form className="card comment-form" onSubmit={submit} aria-label="Add a comment">
        <div className="card-block">
          <textarea
            className="form-control"
            placeholder="Write a comment..."
            aria-label="Write a comment"
            rows={3}
            value={body}
            onChange={(e) => setBody(e.target.value)}
          />
        </div>
        <div className="card-footer">
          <Avatar image={user.image} className="comment-author-img" />
          <button type="submit" className="btn btn-sm btn-primary" disabled={mutation.isPending}>
            Post Comment
          </button>
        </div>
      </form>
    </>
  );
}

function CommentCard({ slug, comment, mine }: { slug: string; comment: Comment; mine: boolean }) {
  const removal = useDeleteComment(slug);
  return (
    <article className="card" aria-label={`Comment by ${comment.author.username}`}>
      <div className="card-block">
        {/* Comments are plain text: React escapes them. */}
        <p className="card-text">{comment.body}</p>
      </div>
      <div className="card-footer">
        <Link to={profilePath(comment.author.username)} className="comment-author" tabIndex={-1} aria-hidden="true">
          <Avatar image={comment.author.image} className="comment-author-img" />
        </Link>
        &nbsp;
        <Link to={profilePath(comment.author.username)} className="comment-author">
          {comment.author.username}
        </Link>
        <time className="date-posted" dateTime={comment.createdAt}>
          {formatDate(comment.createdAt)}
        </time>
        {mine && (
          <span className="mod-options">
            <button
              type="button"
              className="btn-icon"
              aria-label="Delete comment"
              disabled={removal.isPending}
              onClick={() => removal.mutate(comment.id)}
            >
              <i className="ion-trash-a" aria-hidden="true" />
            </button>
          </span>
        )}
      </div>
    </article>
  );
}
