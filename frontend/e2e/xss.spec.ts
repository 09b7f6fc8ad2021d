// Bodies and comments are written by anyone: what they smuggle in never runs.
import { expect, publish, register, signIn, test, type Account } from "./fixtures";

const PAYLOAD = [
  "Before the payload.",
  "",
  "<script>window.__xss = 'script'; alert('script')</script>",
  "",
  '<img src="/missing.png" alt="broken" onerror="window.__xss = \'onerror\'; alert(\'onerror\')">',
  "",
  "[a link](javascript:window.__xss='link')",
  "",
  "After the payload.",
].join("\n");

async function comment(request: import("@playwright/test").APIRequestContext, author: Account, slug: string) {
  const response = await request.post(`/api/articles/${slug}/comments`, {
    data: { comment: { body: PAYLOAD } },
    headers: { Authorization: `Token ${author.token}` },
  });
  expect(response.ok(), await response.text()).toBe(true);
}

test("a script, an onerror handler and a javascript: link in a body or comment never run", async ({
  page,
  request,
}) => {
  const author = await register(request, "mallory");
  const slug = await publish(request, author, {
    title: "<script>window.__xss = 'title'</script> Innocent title",
    description: "<img src=x onerror=\"window.__xss = 'description'\">",
    body: PAYLOAD,
    tagList: ["<b>bold</b>"],
  });
  await comment(request, author, slug);

  for (const signedIn of [false, true]) {
    if (signedIn) await signIn(page, author);
    await page.goto(`/article/${slug}`);
    const body = page.locator(".article-body");
    await expect(body).toContainText("After the payload.");
    // The image stays, without its handler; the script and the javascript: URL go.
    await expect(body.locator("img")).toHaveCount(1);
    await expect(body.locator("img")).not.toHaveAttribute("onerror", /.*/);
    await expect(page.locator(".article-page script")).toHaveCount(0);
    await expect(body).toContainText("a link");
    await expect(page.locator('[href^="javascript:" i]')).toHaveCount(0);
    // The title and comment are text: shown as typed, never parsed.
    await expect(page.getByRole("heading", { level: 1 })).toContainText("<script>");
    await expect(page.locator(".card-text")).toContainText("<script>window.__xss");

    await page.waitForTimeout(300); // give a broken image's onerror the time to fire
    expect(await page.evaluate(() => (window as { __xss?: string }).__xss)).toBeUndefined();
  }

  // The home page lists the article with its description as text too.
  await page.goto("/?tab=global");
  await expect(page.locator(".article-preview p").first()).toContainText("<img src=x");
  expect(await page.evaluate(() => (window as { __xss?: string }).__xss)).toBeUndefined();
});
