import { createContext, useContext } from "react";
import type { User } from "../api/types";

export interface Session {
  /** The signed-in user, or null. */
  user: User | null;
  /** False while a stored token is being checked. */
  ready: boolean;
  signIn(user: User): void;
  signOut(): void;
  /** The user after a settings change (a new token comes with it). */
  update(user: User): void;
}

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (session === null) throw new Error("useSession outside SessionProvider");
  return session;
}
