// Rendering for unit tests, inside the providers the app itself mounts
// (src/main.tsx): a query cache and the session. One helper, so a provider
// added to the app is added to every test in one place.
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render } from "@testing-library/react";
import type { ReactNode } from "react";
import { createMemoryRouter, RouterProvider, type RouteObject } from "react-router";
import { SessionProvider } from "../session/SessionProvider";

/** A query cache for one test: no retries; data fresh for `staleTime` ms (default 0). */
export function testQueryClient(staleTime = 0): QueryClient {
  return new QueryClient({ defaultOptions: { queries: { retry: false, staleTime } } });
}

/** The app's providers around `children`, on `queryClient`: a `wrapper` for `render`/`renderHook`. */
export function providers(queryClient: QueryClient = testQueryClient()) {
  return function Providers({ children }: { children: ReactNode }) {
    return (
      <QueryClientProvider client={queryClient}>
        <SessionProvider>{children}</SessionProvider>
      </QueryClientProvider>
    );
  };
}

/** Render `routes` at `path` inside the app's providers; the cache and router are returned. */
export function renderRoutes(routes: RouteObject[], path: string, queryClient: QueryClient = testQueryClient()) {
  const router = createMemoryRouter(routes, { initialEntries: [path] });
  render(<RouterProvider router={router} />, { wrapper: providers(queryClient) });
  return { queryClient, router };
}
