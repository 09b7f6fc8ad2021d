// The API's validation messages reach the person filling the form, next to the field.
import { expect, publish, register, screenshot, signIn, test } from "./fixtures";

test("sign up with a taken username and email shows each message beside its field", async ({ page, request }) => {
  const taken = await register(request, "taken");
  await page.goto("/register");
  await page.getByLabel("Username").fill(taken.username);
  await page.getByLabel("Email").fill(taken.email);
  await page.getByLabel("Password").fill("another long password");
  await page.getByRole("button", { name: "Sign up" }).click();

  const username = page.getByLabel("Username");
  await expect(username).toHaveAttribute("aria-invalid", "true");
  await expect(username).toHaveAccessibleDescription("username has already been taken");
  await expect(page.getByLabel("Email")).toHaveAccessibleDescription("email has already been taken");
  await expect(page.getByLabel("Password")).toHaveAttribute("aria-invalid", "false");
  await expect(page).toHaveURL(/\/register$/);
  await screenshot(page, "sign-up-errors");
});

test("sign up with a short password and a bad email", async ({ page }) => {
  await page.goto("/register");
  await page.getByLabel("Username").fill("someone");
  await page.getByLabel("Email").fill("not-an-email");
  await page.getByLabel("Password").fill("short");
  await page.getByRole("button", { name: "Sign up" }).click();
  await expect(page.getByLabel("Email")).toHaveAccessibleDescription("email is invalid");
  await expect(page.getByLabel("Password")).toHaveAccessibleDescription(
    "password must be between 8 and 256 characters",
  );
});

test("sign in with a wrong password says so above the form", async ({ page, request }) => {
  const account = await register(request, "forgetful");
  await page.goto("/login");
  await page.getByLabel("Email").fill(account.email);
  await page.getByLabel("Password").fill("not the password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("alert")).toHaveText("email or password is invalid");
  await expect(page).toHaveURL(/\/login$/);
});

test("publishing an empty article names each missing field", async ({ page, request }) => {
  const author = await register(request, "writer");
  await signIn(page, author);
  await page.goto("/editor");
  await page.getByRole("button", { name: "Publish Article" }).click();
  await expect(page.getByLabel("Article Title")).toHaveAccessibleDescription("title can't be blank");
  await expect(page.getByLabel("What's this article about?")).toHaveAccessibleDescription(
    "description can't be blank",
  );
  await expect(page.getByLabel("Write your article (in markdown)")).toHaveAccessibleDescription(
    "body can't be blank",
  );
});

test("signed-out visitors are sent to sign in from the editor and settings", async ({ page }) => {
  for (const path of ["/editor", "/settings"]) {
    await page.goto(path);
    await expect(page).toHaveURL(/\/login$/);
  }
});

test("the whole app works from the keyboard: sign in and reach the editor", async ({ page, request }) => {
  const account = await register(request, "keys");
  await page.goto("/login");
  await page.getByLabel("Email").focus();
  await page.keyboard.type(account.email);
  await page.keyboard.press("Tab");
  await page.keyboard.type(account.password);
  await page.keyboard.press("Enter");
  const nav = page.getByRole("navigation", { name: "Main" });
  await expect(nav.getByRole("link", { name: account.username })).toBeVisible();
  await nav.getByRole("link", { name: "New Article" }).focus();
  await page.keyboard.press("Enter");
  await expect(page.getByLabel("Article Title")).toBeVisible();
});

test("a token the API stops accepting mid-session signs out instead of failing every action", async ({ page, request }) => {
  const author = await register(request, "author");
  const reader = await register(request, "reader");
  const slug = await publish(request, author, { title: "Kept short", description: "d", body: "b" });
  await signIn(page, reader);
  await page.goto(`/article/${slug}`);
  // The token expires between loading the page and the click.
  await page.route("**/api/articles/*/favorite", (route) =>
    route.fulfill({
      status: 401,
      contentType: "application/json",
      headers: { "WWW-Authenticate": "Token" },
      body: JSON.stringify({ errors: { token: ["has expired"] } }),
    }),
  );

  await page.getByRole("button", { name: "Favorite Article (0)" }).first().click();

  const navigation = page.getByRole("navigation", { name: "Main" });
  await expect(navigation.getByRole("link", { name: "Sign in" })).toBeVisible();
  await expect(navigation.getByRole("link", { name: reader.username })).toHaveCount(0);
  expect(await page.evaluate(() => localStorage.getItem("conduit.token"))).toBeNull();
});
