// Sessions end where the person says: everywhere at once, from the settings page.
import { expect, register, signIn, test } from "./fixtures";

test("signing out everywhere from the settings signs out this browser and every other one", async ({
  browser,
  page,
  request,
}) => {
  const account = await register(request, "traveller");
  const elsewhere = await browser.newPage(); // a second device: its own storage, its own token
  await signIn(elsewhere, account);
  await signIn(page, account);

  const nav = page.getByRole("navigation", { name: "Main" });
  await nav.getByRole("link", { name: "Settings" }).click();
  await page.getByRole("button", { name: "Sign out everywhere" }).click();

  await expect(page).toHaveURL(/\/$/);
  await expect(nav.getByRole("link", { name: "Sign in" })).toBeVisible();
  const otherNav = elsewhere.getByRole("navigation", { name: "Main" });
  await elsewhere.reload();
  await expect(otherNav.getByRole("link", { name: "Sign in" })).toBeVisible();
  await expect(otherNav.getByRole("link", { name: account.username })).toHaveCount(0);
  const token = await request.get("/api/user", { headers: { Authorization: `Token ${account.token}` } });
  expect(token.status()).toBe(401);
  await elsewhere.close();
});
