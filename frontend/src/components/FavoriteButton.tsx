import { useNavigate } from "react-router";
import { useToggleFavorite } from "../api/queries";
import type { Article, ArticleListItem } from "../api/types";
import { useSession } from "../session/context";
import { ActionError } from "./ErrorList";

/**
 * Favorite or unfavorite an article. `compact` is the feed's heart with the count;
 * the article page spells it out. Signed out, it leads to sign up.
 */
export function FavoriteButton({
  article,
  compact = false,
}: {
  article: Article | ArticleListItem;
  compact?: boolean;
}) {
  const { user } = useSession();
  const navigate = useNavigate();
  const mutation = useToggleFavorite();

  const action = article.favorited ? "Unfavorite" : "Favorite";
  const className = `btn btn-sm ${article.favorited ? "btn-primary" : "btn-outline-primary"}${
    compact ? " float-right" : ""
  }`;
  return (
    <>
      <button
        type="button"
        className={className}
        aria-pressed={article.favorited}
        // The feed's heart shows only the count: its name says which article.
        aria-label={compact ? `${action} "${article.title}" (${article.favoritesCount})` : undefined}
        disabled={mutation.isPending}
        onClick={() => (user ? mutation.mutate(article) : navigate("/register"))}
      >
        <i className="ion-heart" aria-hidden="true" />
        {compact ? (
          <> {article.favoritesCount}</>
        ) : (
          <>
            &nbsp;{action} Article <span className="counter">({article.favoritesCount})</span>
          </>
        )}
      </button>
      {mutation.isError && <ActionError action={action.toLowerCase()} error={mutation.error} />}
    </>
  );
}
