import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useCallback, useMemo, useState, type ReactNode } from "react";
import { ApiError, getCurrentUser } from "../api/client";
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
