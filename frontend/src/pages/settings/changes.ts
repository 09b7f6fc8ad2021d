// The settings form sends only what the user changed: an untouched email is not
// re-sent (and re-checked), and the password only when a new one is typed.
import type { UpdateUser, User } from "../../api/types";

export interface SettingsForm {
  image: string;
  username: string;
  bio: string;
  email: string;
  password: string;
}

export function settingsForm(user: User): SettingsForm {
  return {
    image: user.image ?? "",
    username: user.username,
    bio: user.bio ?? "",
    email: user.email,
    password: "",
  };
}

/** The request's `user`: the fields that differ from the current user. */
export function settingsChanges(user: User, form: SettingsForm): UpdateUser {
  const changes: UpdateUser = {};
  if (form.image.trim() !== (user.image ?? "")) changes.image = form.image.trim() || null;
  if (form.username !== user.username) changes.username = form.username;
  if (form.bio !== (user.bio ?? "")) changes.bio = form.bio || null;
  if (form.email !== user.email) changes.email = form.email;
  if (form.password !== "") changes.password = form.password;
  return changes;
}
