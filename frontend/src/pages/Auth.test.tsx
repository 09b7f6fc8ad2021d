import { cleanup, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { setBaseUrl } from "../api/client";
import { makeUser } from "../test/factories";
import { renderRoutes } from "../test/render";
import { Auth } from "./Auth";

function answer(status: number, body: unknown) {
  return vi.fn<(request: Request) => Promise<Response>>(async () => new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } }));
}

function renderAt(path: string) {
  renderRoutes(
    [
      { path: "/register", element: <Auth mode="register" /> },
      { path: "/login", element: <Auth mode="login" /> },
      { path: "/", element: <p>Home page</p> },
    ],
    path,
  );
}

describe("the sign-up form", () => {
  beforeEach(() => localStorage.clear());
  afterEach(() => {
    cleanup();
    vi.unstubAllGlobals();
  });

  it("shows each of the API's messages beside its field", async () => {
    vi.stubGlobal("fetch", answer(422, { errors: { email: ["has already been taken"], username: ["can't be blank"] } }));
    setBaseUrl("http://conduit.test"); // the client picks up the stubbed fetch
    renderAt("/register");
    const user = userEvent.setup();
    await user.type(screen.getByLabelText("Email"), "ann@example.com");
    await user.type(screen.getByLabelText("Password"), "long enough password");
    await user.click(screen.getByRole("button", { name: "Sign up" }));

    const email = screen.getByLabelText("Email");
    expect(await screen.findByText("email has already been taken")).toBeTruthy();
    expect(email.getAttribute("aria-invalid")).toBe("true");
    expect(document.getElementById(email.getAttribute("aria-describedby") ?? "")?.textContent).toBe(
      "email has already been taken",
    );
    expect(screen.getByLabelText("Username").getAttribute("aria-invalid")).toBe("true");
    expect(screen.getByLabelText("Password").getAttribute("aria-invalid")).toBe("false");
  });

  it("signs in, stores the token and goes home", async () => {
    const user = makeUser({ username: "ann", email: "ann@example.com", token: "jwt-1" });
    const fetch = answer(200, { user });
    vi.stubGlobal("fetch", fetch);
    setBaseUrl("http://conduit.test");
    renderAt("/login");
    const events = userEvent.setup();
    await events.type(screen.getByLabelText("Email"), user.email);
    await events.type(screen.getByLabelText("Password"), "long enough password");
    await events.click(screen.getByRole("button", { name: "Sign in" }));

    expect(await screen.findByText("Home page")).toBeTruthy();
    expect(localStorage.getItem("conduit.token")).toBe("jwt-1");
    const request = fetch.mock.calls[0]?.[0];
    expect(request?.url).toBe("http://conduit.test/api/users/login");
    expect(await request?.json()).toEqual({ user: { email: user.email, password: "long enough password" } });
  });

  it("shows a throttled login's message above the form, no field marked", async () => {
    const message = "are too many from this address; try again in 42 seconds";
    vi.stubGlobal("fetch", answer(429, { errors: { "login attempts": [message] } }));
    setBaseUrl("http://conduit.test");
    renderAt("/login");
    const events = userEvent.setup();
    await events.type(screen.getByLabelText("Email"), "ann@example.com");
    await events.type(screen.getByLabelText("Password"), "long enough password");
    await events.click(screen.getByRole("button", { name: "Sign in" }));

    expect(await screen.findByText(`login attempts ${message}`)).toBeTruthy();
    expect(screen.getByLabelText("Email").getAttribute("aria-invalid")).toBe("false");
    expect(screen.getByLabelText("Password").getAttribute("aria-invalid")).toBe("false");
    expect(localStorage.getItem("conduit.token")).toBeNull();
  });
});
