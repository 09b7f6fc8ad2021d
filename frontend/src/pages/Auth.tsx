import { useState, type FormEvent } from "react";
import { Link, useNavigate } from "react-router";
import { errorMessages, splitFieldErrors } from "../api/errors";
import { useAuthenticate } from "../api/queries";
import { ErrorList } from "../components/ErrorList";
import { Field } from "../components/Field";

const FIELDS = ["username", "email", "password"] as const;

/** Sign up (`mode="register"`) or sign in; the API's messages appear beside their fields. */
export function Auth({ mode }: { mode: "login" | "register" }) {
  const registering = mode === "register";
  const navigate = useNavigate();
  const [username, setUsername] = useState("");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");

  const mutation = useAuthenticate(mode);
  const { byField, other } = mutation.isError
    ? splitFieldErrors(errorMessages(mutation.error), FIELDS)
    : { byField: {}, other: [] };

  const submit = (event: FormEvent) => {
    event.preventDefault();
    mutation.mutate({ username, email, password }, { onSuccess: () => navigate("/") });
  };

  return (
    <div className="auth-page">
      <div className="container page">
        <div className="row">
          <div className="col-md-6 offset-md-3 col-xs-12">
            <h1 className="text-center">{registering ? "Sign up" : "Sign in"}</h1>
            <p className="text-center">
              {registering ? (
                <Link to="/login">Have an account?</Link>
              ) : (
                <Link to="/register">Need an account?</Link>
              )}
            </p>
            <ErrorList messages={other} />
            <form onSubmit={submit} aria-label={registering ? "Sign up" : "Sign in"} noValidate>
              {registering && (
                <Field label="Username" field="username" errors={byField.username}>
                  {(props) => (
                    <input
                      {...props}
                      className={`${props.className} form-control-lg`}
                      type="text"
                      placeholder="Username"
                      autoComplete="username"
                      value={username}
                      onChange={(e) => setUsername(e.target.value)}
                    />
                  )}
                </Field>
              )}
              <Field label="Email" field="email" errors={byField.email}>
                {(props) => (
                  <input
                    {...props}
                    className={`${props.className} form-control-lg`}
                    type="email"
                    placeholder="Email"
                    autoComplete="email"
                    value={email}
                    onChange={(e) => setEmail(e.target.value)}
                  />
                )}
              </Field>
              <Field label="Password" field="password" errors={byField.password}>
                {(props) => (
                  <input
                    {...props}
                    className={`${props.className} form-control-lg`}
                    type="password"
                    placeholder="Password"
                    autoComplete={registering ? "new-password" : "current-password"}
                    value={password}
                    onChange={(e) => setPassword(e.target.value)}
                  />
                )}
              </Field>
              <button
                type="submit"
                className="btn btn-lg btn-primary float-right"
                disabled={mutation.isPending}
              >
                {registering ? "Sign up" : "Sign in"}
              </button>
            </form>
          </div>
        </div>
      </div>
    </div>
  );
}
