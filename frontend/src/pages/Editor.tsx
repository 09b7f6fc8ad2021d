import { useRef, useState, type FormEvent, type KeyboardEvent } from "react";
import { useNavigate, useParams } from "react-router";
import { ApiError } from "../api/client";
import { errorMessages, splitFieldErrors } from "../api/errors";
import { useArticleToEdit, useSaveArticle } from "../api/queries";
import type { Article } from "../api/types";
import { ErrorList } from "../components/ErrorList";
import { Field } from "../components/Field";
import { addTags, removeTag } from "../lib/tags";

const FIELDS = ["title", "description", "body", "tagList"] as const;

/**
 * /editor writes a new article; /editor/:slug edits one, read afresh with its
 * `ETag`. Reloading after a conflict reads it again and starts the form over.
 */
export function Editor() {
  const { slug } = useParams();
  const existing = useArticleToEdit(slug);
  const [loads, setLoads] = useState(0);
  if (slug === undefined) return <ArticleForm key="new" />;
  if (existing.isPending) return <div className="container page">Loading article…</div>;
  if (existing.isError) return <div className="container page error-messages">Could not load the article.</div>;
  const reload = async () => {
    if ((await existing.refetch()).isSuccess) setLoads((n) => n + 1);
  };
  return (
    <ArticleForm
      key={`${slug} ${loads}`}
      article={existing.data.article}
      etag={existing.data.etag}
      onReload={() => void reload()}
    />
  );
}

function ArticleForm({
  article,
  etag = null,
  onReload,
}: {
  article?: Article;
  etag?: string | null;
  onReload?: () => void;
}) {
  const navigate = useNavigate();
  const [title, setTitle] = useState(article?.title ?? "");
  const [description, setDescription] = useState(article?.description ?? "");
  const [body, setBody] = useState(article?.body ?? "");
  const [tagList, setTagList] = useState<string[]>(article?.tagList ?? []);
  const [tagInput, setTagInput] = useState("");
  // The article as this form loaded it: a save applies only to that version.
  const [editing] = useState(() => (article ? { slug: article.slug, etag } : undefined));
  const mutation = useSaveArticle(editing);
  // A double click submits twice before the re-render disables the button, and a save can
  // answer before the second click: one save per form, again only after one failed.
  const saving = useRef(false);
  const conflict = mutation.error instanceof ApiError && mutation.error.status === 412;
  const { byField, other } = mutation.isError && !conflict
    ? splitFieldErrors(errorMessages(mutation.error), FIELDS)
    : { byField: {}, other: [] };

  const onTagKey = (event: KeyboardEvent<HTMLInputElement>) => {
    if (event.key === "Enter" || event.key === ",") {
      event.preventDefault(); // Enter adds the tag; it does not submit the form
      setTagList((tags) => addTags(tags, tagInput));
      setTagInput("");
    }
  };
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (saving.current) return;
    saving.current = true;
    const fields = { title, description, body, tagList: addTags(tagList, tagInput) };
    mutation.mutate(fields, {
      onSuccess: ({ article: saved }) => navigate(`/article/${encodeURIComponent(saved.slug)}`),
      onError: () => {
        saving.current = false;
      },
    });
  };

  return (
    <div className="editor-page">
      <div className="container page">
        <div className="row">
          <div className="col-md-10 offset-md-1 col-xs-12">
            <h1 className="sr-only">{article ? "Edit article" : "New article"}</h1>
            <ErrorList messages={other} />
            {conflict && (
              <div className="error-messages" role="alert">
                <p>
                  This article changed since you opened it (in another tab or window), so your changes were not
                  saved: saving them would undo that change. Reload it to edit the current version; copy anything
                  you want to keep first, as reloading replaces what you typed here.
                </p>
                <button type="button" className="btn btn-sm btn-outline-secondary" onClick={onReload}>
                  Reload the article
                </button>
              </div>
            )}
            <form onSubmit={submit} aria-label={article ? "Edit article" : "New article"}>
              <Field label="Article Title" field="title" errors={byField.title}>
                {(props) => (
                  <input
                    {...props}
                    className={`${props.className} form-control-lg`}
                    type="text"
                    placeholder="Article Title"
                    value={title}
                    onChange={(e) => setTitle(e.target.value)}
                  />
                )}
              </Field>
              <Field label="What's this article about?" field="description" errors={byField.description}>
                {(props) => (
                  <input
                    {...props}
                    type="text"
                    placeholder="What's this article about?"
                    value={description}
                    onChange={(e) => setDescription(e.target.value)}
                  />
                )}
              </Field>
              <Field label="Write your article (in markdown)" field="body" errors={byField.body}>
                {(props) => (
                  <textarea
                    {...props}
                    rows={8}
                    placeholder="Write your article (in markdown)"
                    value={body}
                    onChange={(e) => setBody(e.target.value)}
                  />
                )}
              </Field>
              <Field label="Enter tags" field="tagList" errors={byField.tagList}>
                {(props) => (
                  <input
                    {...props}
                    type="text"
                    placeholder="Enter tags"
                    value={tagInput}
                    onChange={(e) => setTagInput(e.target.value)}
                    onKeyDown={onTagKey}
                  />
                )}
              </Field>
              <ul className="tag-list" aria-label="Tags">
                {tagList.map((tag) => (
                  <li key={tag} className="tag-default tag-pill">
                    <button
                      type="button"
                      className="tag-remove"
                      aria-label={`Remove tag ${tag}`}
                      onClick={() => setTagList((tags) => removeTag(tags, tag))}
                    >
                      <i className="ion-close-round" aria-hidden="true" />
                    </button>
                    {tag}
                  </li>
                ))}
              </ul>
              <button type="submit" className="btn btn-lg float-right btn-primary" disabled={mutation.isPending}>
                Publish Article
              </button>
            </form>
          </div>
        </div>
      </div>
    </div>
  );
}
