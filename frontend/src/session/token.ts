// The JWT lives in localStorage so a reload keeps the user signed in.
import { setToken } from "../api/client";

const KEY = "conduit.token";

export function restoreToken(): string | null {
  const token = localStorage.getItem(KEY);
  setToken(token);
  return token;
}

export function storeToken(token: string | null): void {
  if (token === null) localStorage.removeItem(KEY);
  else localStorage.setItem(KEY, token);
  setToken(token);
}
