import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useCallback, useEffect, useMemo, useState, type ReactNode } from "react";
import { ApiError, getCurrentUser, getToken } from "../api/client";
import { keys } from "../api/queries/keys";
import type { User } from "../api/types";
import { SessionContext, type Session } from "./context";
import { restoreToken, storeToken } from "./token";

export function SessionProvider({ children }: { children: ReactNode }) {
  const queryClient = useQueryClient();
  const [token, setTokenState] = useState<string | null>(restoreToken);

  const current = useQuery({
    queryKey: keys.user,
    queryFn: async () => {
      try {
        return (await getCurrentUser()).user;
      } catch (error) {
        // A token the API no longer accepts (expired, key rotated) signs out.
        if (error instanceof ApiError && error.status === 401) {
          storeToken(null);
          setTokenState(null);
          return null;
        }
        throw error;
      }
    },
    enabled: token !== null,
    staleTime: Infinity,
    retry: false,
  });

  const signIn = useCallback(
    (user: User) => {
      storeToken(user.token);
      setTokenState(user.token);
      // Lists and articles say whether *this* user favorited or follows: refetch.
      queryClient.removeQueries({ predicate: (query) => query.queryKey[0] !== keys.user[0] });
      queryClient.setQueryData(keys.user, user);
    },
    [queryClient],
  );

  const signOut = useCallback(() => {
    storeToken(null);
    setTokenState(null);
    queryClient.clear();
  }, [queryClient]);

  // A token the API stops accepting mid-session (it expired, the key was
  // rotated) signs out wherever it shows: a 401 on any query or mutation sent
  // with a token. Deferred, so the caches are not cleared while they notify.
  useEffect(() => {
    const onError = (error: unknown) => {
      if (error instanceof ApiError && error.status === 401 && getToken() !== null) {
        setTimeout(signOut, 0);
      }
    };
    const stops = [
      queryClient.getQueryCache().subscribe((event) => {
        if (event.type === "updated" && event.action.type === "error") onError(event.action.error);
      }),
      queryClient.getMutationCache().subscribe((event) => {
        if (event.type === "updated" && event.action.type === "error") onError(event.action.error);
      }),
    ];
    return () => stops.forEach((stop) => stop());
  }, [queryClient, signOut]);

  const update = useCallback(
    (user: User) => {
      storeToken(user.token);
      setTokenState(user.token);
      queryClient.setQueryData(keys.user, user);
    },
    [queryClient],
  );

  const session = useMemo<Session>(
    () => ({
      user: token === null ? null : (current.data ?? null),
      ready: token === null || !current.isPending,
      signIn,
      signOut,
      update,
    }),
    [token, current.data, current.isPending, signIn, signOut, update],
  );

  return <SessionContext.Provider value={session}>{children}</SessionContext.Provider>;
}
