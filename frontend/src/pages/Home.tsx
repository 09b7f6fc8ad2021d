import { Link, useSearchParams } from "react-router";
import { useTags } from "../api/queries";
import { ArticleList } from "../components/ArticleList";
import type { ArticleFilter } from "../lib/articleList";
import { useSession } from "../session/context";

function Tab({ to, active, children }: { to: string; active: boolean; children: React.ReactNode }) {
  return (
    <li className="nav-item">
      <Link to={to} className={`nav-link${active ? " active" : ""}`} aria-current={active ? "page" : undefined}>
        {children}
      </Link>
    </li>
  );
}

export function Home() {
  const { user } = useSession();
  const [params] = useSearchParams();
  const tag = params.get("tag");
  // Signed in, the feed of followed authors comes first, as in Conduit.
  const tab = tag ? "tag" : (params.get("tab") ?? (user ? "feed" : "global"));
  const filter: ArticleFilter =
    tab === "feed" && user ? { kind: "feed" } : tag ? { kind: "global", tag } : { kind: "global" };

  return (
    <div className="home-page">
      {!user && (
        <div className="banner">
          <div className="container">
            <h1 className="logo-font">conduit</h1>
            <p>A place to share your knowledge.</p>
          </div>
        </div>
      )}
      <div className="container page">
        <div className="row">
          <main className="col-md-9">
            <div className="feed-toggle">
              <ul className="nav nav-pills outline-active" aria-label="Feeds">
                {user && (
                  <Tab to="/?tab=feed" active={filter.kind === "feed"}>
                    Your Feed
                  </Tab>
                )}
                <Tab to="/?tab=global" active={filter.kind === "global" && !tag}>
                  Global Feed
                </Tab>
                {tag && (
                  <Tab to={`/?tag=${encodeURIComponent(tag)}`} active>
                    <i className="ion-pound" aria-hidden="true" /> {tag}
                  </Tab>
                )}
              </ul>
            </div>
            <ArticleList
              key={JSON.stringify(filter)}
              filter={filter}
              empty={
                filter.kind === "feed"
                  ? "No articles are here... yet. Follow authors to see theirs here."
                  : "No articles are here... yet."
              }
            />
          </main>
          <aside className="col-md-3">
            <PopularTags />
          </aside>
        </div>
      </div>
    </div>
  );
}

function PopularTags() {
  const { data: tags, isPending, isError } = useTags();
  return (
    <nav className="sidebar" aria-labelledby="popular-tags">
      <p id="popular-tags">Popular Tags</p>
      {isPending && <div>Loading tags…</div>}
      {isError && <div className="error-messages">Could not load tags.</div>}
      {tags && tags.length === 0 && <div>No tags yet.</div>}
      {tags && (
        <div className="tag-list">
          {tags.map((tag) => (
            <Link key={tag} to={`/?tag=${encodeURIComponent(tag)}`} className="tag-pill tag-default">
              {tag}
            </Link>
          ))}
        </div>
      )}
    </nav>
  );
}
