import { createBrowserRouter } from "react-router";
import { GuestOnly, Layout, RequireAuth } from "./components/Layout";
import { Article } from "./pages/Article";
import { Auth } from "./pages/Auth";
import { Editor } from "./pages/Editor";
import { Home } from "./pages/Home";
import { NotFound } from "./pages/NotFound";
import { Profile } from "./pages/Profile";
import { Settings } from "./pages/settings/Settings";

export const router = createBrowserRouter([
  {
    element: <Layout />,
    children: [
      { index: true, element: <Home /> },
      {
        element: <GuestOnly />,
        children: [
          { path: "login", element: <Auth mode="login" /> },
          { path: "register", element: <Auth mode="register" /> },
        ],
      },
      {
        element: <RequireAuth />,
        children: [
          { path: "settings", element: <Settings /> },
          { path: "editor", element: <Editor /> },
          { path: "editor/:slug", element: <Editor /> },
        ],
      },
      { path: "article/:slug", element: <Article /> },
      { path: "profile/:username", element: <Profile tab="articles" /> },
      { path: "profile/:username/favorites", element: <Profile tab="favorites" /> },
      { path: "*", element: <NotFound /> },
    ],
  },
]);
