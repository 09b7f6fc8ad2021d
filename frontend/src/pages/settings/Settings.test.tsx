import { cleanup, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { setBaseUrl } from "../../api/client";
import { makeUser } from "../../test/factories";
import { renderRoutes } from "../../test/render";
import { Settings } from "./Settings";

const ANN = makeUser({ token: "jwt-1" });

/** The API: `GET /api/user` is ann; `DELETE /api/user/sessions` answers `status`. */
function api(status: number, body?: unknown) {
  return vi.fn<(request: Request) => Promise<Response>>(async (request) => {
    if (request.method === "DELETE") {
      return new Response(body === undefined ? null : JSON.stringify(body), {
        status,
        headers: { "Content-Type": "application/json" },
      });
    }
    return new Response(JSON.stringify({ user: ANN }), { status: 200, headers: { "Content-Type": "application/json" } });
  });
}

function renderSettings() {
  renderRoutes(
    [
      { path: "/settings", element: <Settings /> },
      { path: "/", element: <p>Home page</p> },
    ],
    "/settings",
  );
}

describe("sign out everywhere", () => {
  beforeEach(() => {
    localStorage.clear();
    localStorage.setItem("conduit.token", ANN.token);
  });
  afterEach(() => {
    cleanup();
    vi.unstubAllGlobals();
  });

  it("ends every session through the API, then signs out here and goes home", async () => {
    const fetch = api(204);
    vi.stubGlobal("fetch", fetch);
    setBaseUrl("http://conduit.test");
    renderSettings();

    await userEvent.setup().click(await screen.findByRole("button", { name: "Sign out everywhere" }));

    expect(await screen.findByText("Home page")).toBeTruthy();
    expect(localStorage.getItem("conduit.token")).toBeNull();
    const request = fetch.mock.calls.map(([sent]) => sent).find((sent) => sent.method === "DELETE");
    expect(request?.url).toBe("http://conduit.test/api/user/sessions");
    expect(request?.headers.get("Authorization")).toBe("Token jwt-1");
  });

  it("stays signed in and says why when the API cannot do it", async () => {
    vi.stubGlobal("fetch", api(503, { errors: { body: ["service unavailable"] } }));
    setBaseUrl("http://conduit.test");
    renderSettings();

    await userEvent.setup().click(await screen.findByRole("button", { name: "Sign out everywhere" }));

    expect((await screen.findByRole("alert")).textContent).toBe("service unavailable");
    expect(localStorage.getItem("conduit.token")).toBe(ANN.token);
  });
});
