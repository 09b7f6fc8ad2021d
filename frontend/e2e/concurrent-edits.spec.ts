// Two tabs edit one article: the second save, made over a version it never saw,
// is refused (If-Match, 412) and says so, instead of silently undoing the first.
import { expect, publish, register, signIn, test, unique } from "./fixtures";

test("the second of two tabs editing one article is told it changed, and the first save is kept", async ({
  page,
  request,
}) => {
  const author = await register(request, "tabs");
  const title = `Two tabs ${unique("")}`;
  const slug = await publish(request, author, { title, description: "Edited twice", body: "The original." });
  await signIn(page, author);
  const other = await page.context().newPage(); // the same session, another tab
  const bodyField = "Write your article (in markdown)";

  await test.step("both tabs open the editor on the same version", async () => {
    for (const tab of [page, other]) {
      await tab.goto(`/editor/${slug}`);
      await expect(tab.getByLabel(bodyField)).toHaveValue("The original.");
    }
  });

  await test.step("the first tab saves", async () => {
    await page.getByLabel(bodyField).fill("The first tab's words.");
    await page.getByRole("button", { name: "Publish Article" }).click();
    await expect(page.getByRole("heading", { level: 1, name: title })).toBeVisible();
    await expect(page.locator(".article-body")).toHaveText("The first tab's words.");
  });

  await test.step("the second tab's save is refused with a way to reload", async () => {
    await other.getByLabel(bodyField).fill("The second tab's words.");
    await other.getByRole("button", { name: "Publish Article" }).click();
    await expect(other.getByRole("alert")).toContainText("This article changed since you opened it");
    await expect(other).toHaveURL(new RegExp(`/editor/${slug}$`));
    await expect(other.getByLabel(bodyField)).toHaveValue("The second tab's words."); // not lost yet

    const saved = await request.get(`/api/articles/${slug}`);
    expect(((await saved.json()) as { article: { body: string } }).article.body).toBe("The first tab's words.");
  });

  await test.step("reloading shows the first tab's version, which then saves", async () => {
    await other.getByRole("button", { name: "Reload the article" }).click();
    await expect(other.getByLabel(bodyField)).toHaveValue("The first tab's words.");
    await expect(other.getByRole("alert")).toHaveCount(0);
    await other.getByLabel(bodyField).fill("The second tab, on top of the first.");
    await other.getByRole("button", { name: "Publish Article" }).click();
    await expect(other.locator(".article-body")).toHaveText("The second tab, on top of the first.");
  });
});
