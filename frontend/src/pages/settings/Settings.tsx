import { useState, type FormEvent } from "react";
import { useNavigate } from "react-router";
import { errorMessages, splitFieldErrors } from "../../api/errors";
import { useUpdateSettings } from "../../api/queries";
import type { User } from "../../api/types";
import { ErrorList } from "../../components/ErrorList";
import { Field } from "../../components/Field";
import { useSession } from "../../session/context";
import { settingsChanges, settingsForm, type SettingsForm } from "./changes";

const FIELDS = ["image", "username", "bio", "email", "password"] as const;

export function Settings() {
  const { user, signOut } = useSession();
  const navigate = useNavigate();
  if (user === null) return null; // RequireAuth renders this page only when signed in
  return (
    <div className="settings-page">
      <div className="container page">
        <div className="row">
          <div className="col-md-6 offset-md-3 col-xs-12">
            <h1 className="text-center">Your Settings</h1>
            <SettingsEditor user={user} />
            <hr />
            <button
              type="button"
              className="btn btn-outline-danger"
              onClick={() => {
                // Leave this signed-in-only page first, so it does not send to sign in.
                void navigate("/", { flushSync: true });
                signOut();
              }}
            >
              Or click here to logout.
            </button>
          </div>
        </div>
      </div>
    </div>
  );
}

function SettingsEditor({ user }: { user: User }) {
  const navigate = useNavigate();
  const [form, setForm] = useState<SettingsForm>(() => settingsForm(user));
  const mutation = useUpdateSettings();
  const { byField, other } = mutation.isError
    ? splitFieldErrors(errorMessages(mutation.error), FIELDS)
    : { byField: {}, other: [] };
  const set = (field: keyof SettingsForm) => (event: { target: { value: string } }) =>
    setForm((current) => ({ ...current, [field]: event.target.value }));

  const submit = (event: FormEvent) => {
    event.preventDefault();
    mutation.mutate(settingsChanges(user, form), {
      onSuccess: ({ user: updated }) => navigate(`/profile/${encodeURIComponent(updated.username)}`),
    });
  };

  return (
    <>
      <ErrorList messages={other} />
      <form onSubmit={submit} aria-label="Settings" noValidate>
        <Field label="URL of profile picture" field="image" errors={byField.image}>
          {(props) => (
            <input {...props} type="url" placeholder="URL of profile picture" value={form.image} onChange={set("image")} />
          )}
        </Field>
        <Field label="Username" field="username" errors={byField.username}>
          {(props) => (
            <input
              {...props}
              className={`${props.className} form-control-lg`}
              type="text"
              placeholder="Your Name"
              autoComplete="username"
              value={form.username}
              onChange={set("username")}
            />
          )}
        </Field>
        <Field label="Short bio about you" field="bio" errors={byField.bio}>
          {(props) => (
            <textarea
              {...props}
              className={`${props.className} form-control-lg`}
              rows={8}
              placeholder="Short bio about you"
              value={form.bio}
              onChange={set("bio")}
            />
          )}
        </Field>
        <Field label="Email" field="email" errors={byField.email}>
          {(props) => (
            <input
              {...props}
              className={`${props.className} form-control-lg`}
              type="email"
              placeholder="Email"
              autoComplete="email"
              value={form.email}
              onChange={set("email")}
            />
          )}
        </Field>
        <Field label="New Password" field="password" errors={byField.password}>
          {(props) => (
            <input
              {...props}
              className={`${props.className} form-control-lg`}
              type="password"
              placeholder="New Password"
              autoComplete="new-password"
              value={form.password}
              onChange={set("password")}
            />
          )}
        </Field>
        <button type="submit" className="btn btn-lg btn-primary float-right" disabled={mutation.isPending}>
          Update Settings
        </button>
      </form>
    </>
  );
}
