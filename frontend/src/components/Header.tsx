import { NavLink } from "react-router";
import { useSession } from "../session/context";
import { Avatar } from "./Avatar";

function Item({ to, children }: { to: string; children: React.ReactNode }) {
  return (
    <li className="nav-item">
      <NavLink to={to} end className={({ isActive }) => `nav-link${isActive ? " active" : ""}`}>
        {children}
      </NavLink>
    </li>
  );
}

export function Header() {
  const { user } = useSession();
  return (
    <nav className="navbar navbar-light" aria-label="Main">
      <div className="container">
        <NavLink className="navbar-brand" to="/">
          conduit
        </NavLink>
        <ul className="nav navbar-nav float-right">
          <Item to="/">Home</Item>
          {user ? (
            <>
              <Item to="/editor">
                <i className="ion-compose" aria-hidden="true" />
                &nbsp;New Article
              </Item>
              <Item to="/settings">
                <i className="ion-gear-a" aria-hidden="true" />
                &nbsp;Settings
              </Item>
              <Item to={`/profile/${encodeURIComponent(user.username)}`}>
                <Avatar image={user.image} className="user-pic" />
                {user.username}
              </Item>
            </>
          ) : (
            <>
              <Item to="/login">Sign in</Item>
              <Item to="/register">Sign up</Item>
            </>
          )}
        </ul>
      </div>
    </nav>
  );
}
