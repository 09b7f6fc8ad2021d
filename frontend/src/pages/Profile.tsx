import { Link, NavLink, useParams } from "react-router";
import { useProfile } from "../api/queries";
import { ArticleList } from "../components/ArticleList";
import { profilePath } from "../components/ArticleMeta";
import { Avatar } from "../components/Avatar";
import { FollowButton } from "../components/FollowButton";
import { useSession } from "../session/context";

/** /profile/:username lists the author's articles; /profile/:username/favorites their favorites. */
export function Profile({ tab }: { tab: "articles" | "favorites" }) {
  const { username = "" } = useParams();
  const { user } = useSession();
  const { data: profile, isPending, isError } = useProfile(username);
  if (isPending) return <div className="container page">Loading profile…</div>;
  if (isError) return <div className="container page error-messages">This profile does not exist.</div>;

  const mine = user?.username === profile.username;
  const tabClass = ({ isActive }: { isActive: boolean }) => `nav-link${isActive ? " active" : ""}`;
  return (
    <div className="profile-page">
      <div className="user-info">
        <div className="container">
          <div className="row">
            <div className="col-xs-12 col-md-10 offset-md-1">
              <Avatar image={profile.image} className="user-img" />
              <h1 className="h4">{profile.username}</h1>
              {profile.bio && <p>{profile.bio}</p>}
              {mine ? (
                <Link to="/settings" className="btn btn-sm btn-outline-secondary action-btn">
                  <i className="ion-gear-a" aria-hidden="true" /> Edit Profile Settings
                </Link>
              ) : (
                <FollowButton profile={profile} className="action-btn" />
              )}
            </div>
          </div>
        </div>
      </div>
      <div className="container">
        <div className="row">
          <div className="col-xs-12 col-md-10 offset-md-1">
            <div className="articles-toggle">
              <ul className="nav nav-pills outline-active" aria-label="Articles">
                <li className="nav-item">
                  <NavLink to={profilePath(profile.username)} end className={tabClass}>
                    My Articles
                  </NavLink>
                </li>
                <li className="nav-item">
                  <NavLink to={`${profilePath(profile.username)}/favorites`} end className={tabClass}>
                    Favorited Articles
                  </NavLink>
                </li>
              </ul>
            </div>
            {tab === "articles" ? (
              <ArticleList
                key={`author-${profile.username}`}
                filter={{ kind: "author", username: profile.username }}
                empty="No articles are here... yet."
              />
            ) : (
              <ArticleList
                key={`favorited-${profile.username}`}
                filter={{ kind: "favorited", username: profile.username }}
                empty="No articles are here... yet."
              />
            )}
          </div>
        </div>
      </div>
    </div>
  );
}
