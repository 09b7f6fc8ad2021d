import { Navigate, Outlet, useLocation } from "react-router";
import { useSession } from "../session/context";
import { Footer } from "./Footer";
import { Header } from "./Header";

export function Layout() {
  return (
    <div className="app">
      <Header />
      <div className="app-content">
        <Outlet />
      </div>
      <Footer />
    </div>
  );
}

/** Pages for signed-in users; others are sent to sign in. */
export function RequireAuth() {
  const { user, ready } = useSession();
  const location = useLocation();
  if (!ready) return <div className="container page">Loading…</div>;
  if (user === null) return <Navigate to="/login" replace state={{ from: location.pathname }} />;
  return <Outlet />;
}

/** Sign in and sign up, for signed-out users only. */
export function GuestOnly() {
  const { user } = useSession();
  if (user !== null) return <Navigate to="/" replace />;
  return <Outlet />;
}
