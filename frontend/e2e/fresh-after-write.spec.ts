// The web app never shows what its own write replaced: a page seen a moment
// before shows the new data when returned to, and a renamed article's old slug
// is never asked for again (it would answer 404).
import { expect, publish, register, signIn, test, unique } from "./fixtures";

test("a profile seen before the settings change shows the new bio", async ({ page, request }) => {
  const me = await register(request, "bio");
  const before = await request.put("/api/user", {
    data: { user: { bio: "The bio before." } },
    headers: { Authorization: `Token ${me.token}` },
  });
  expect(before.status()).toBe(200);
  await signIn(page, me);
  const nav = page.getByRole("navigation", { name: "Main" });

  await nav.getByRole("link", { name: me.username }).click();
  await expect(page.getByText("The bio before.")).toBeVisible(); // now in the cache

  await nav.getByRole("link", { name: "Settings" }).click();
  await page.getByLabel("Short bio about you").fill("The bio after.");
  await page.getByRole("button", { name: "Update Settings" }).click();

  await expect(page).toHaveURL(new RegExp(`/profile/${me.username}$`));
  await expect(page.getByText("The bio after.")).toBeVisible();
  await expect(page.getByText("The bio before.")).toHaveCount(0);
  await nav.getByRole("link", { name: "Home" }).click();
  await nav.getByRole("link", { name: me.username }).click();
  await expect(page.getByText("The bio after.")).toBeVisible();
});

test("renaming an article never asks for its old slug again", async ({ page, request }) => {
  const me = await register(request, "rename");
  const title = `Before the rename ${unique("")}`;
  const slug = await publish(request, me, { title, description: "Renamed soon", body: "Same body." });
  const misses: string[] = [];
  page.on("response", (response) => {
    if (response.status() === 404 && response.url().includes(slug)) misses.push(response.url());
  });
  await signIn(page, me);

  await page.goto(`/article/${slug}`); // the article and its comments are cached under the old slug
  await expect(page.getByRole("heading", { level: 1, name: title })).toBeVisible();
  await page.getByRole("link", { name: "Edit Article" }).first().click();
  await page.getByLabel("Article Title").fill(`After the rename ${unique("")}`);
  await page.getByRole("button", { name: "Publish Article" }).click();

  await expect(page.getByRole("heading", { level: 1, name: /After the rename/ })).toBeVisible();
  await expect(page).not.toHaveURL(new RegExp(`/article/${slug}$`));
  await expect(page.getByRole("region", { name: "Comments" })).toBeVisible();
  await page.waitForLoadState("networkidle");
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Home" }).click();
  await page.waitForLoadState("networkidle");
  expect(misses).toEqual([]);
});
