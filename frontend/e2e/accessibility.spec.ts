// Every page passes axe's WCAG 2 A and AA rules (every control named, every
// field labelled, landmarks, ARIA used correctly), except colour contrast:
// Conduit's design greys (dates, tag outlines, the footer) are lighter than AA
// asks, and the look is kept on purpose (docs/frontend.md).
import AxeBuilder from "@axe-core/playwright";
import type { Page } from "@playwright/test";
import { expect, publish, register, signIn, test } from "./fixtures";

async function violations(page: Page) {
  const results = await new AxeBuilder({ page })
    .withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"])
    .disableRules(["color-contrast"])
    .analyze();
  return results.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
}

test("every page passes axe's WCAG 2 A and AA rules, signed out and signed in", async ({ page, request }) => {
  test.setTimeout(120_000);
  const author = await register(request, "axe");
  const reader = await register(request, "reader");
  const slug = await publish(request, author, {
    title: "Accessible by default",
    description: "Names for every control",
    body: "# Heading\n\nA paragraph with a [link](/).",
    tagList: ["a11y"],
  });
  await request.post(`/api/articles/${slug}/comments`, {
    data: { comment: { body: "Nice." } },
    headers: { Authorization: `Token ${author.token}` },
  });

  const signedOut = ["/", "/login", "/register", `/article/${slug}`, `/profile/${author.username}`];
  for (const path of signedOut) {
    await page.goto(path);
    await expect(page.locator(".app-content")).not.toContainText("Loading");
    expect(await violations(page), path).toEqual([]);
  }

  for (const [account, paths] of [
    [author, ["/", `/article/${slug}`, `/editor/${slug}`, "/editor", "/settings"]],
    [reader, [`/article/${slug}`, `/profile/${author.username}/favorites`]],
  ] as const) {
    await signIn(page, account);
    for (const path of paths) {
      await page.goto(path);
      await expect(page.locator(".app-content")).not.toContainText("Loading");
      expect(await violations(page), `${account.username} at ${path}`).toEqual([]);
    }
    await page.evaluate(() => localStorage.clear());
  }
});
