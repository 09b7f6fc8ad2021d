// Ten articles a page; the page is in the URL, so a reload or a link keeps it.
import { expect, publish, register, test, unique } from "./fixtures";

test("a tag with twelve articles pages ten, then two", async ({ page, request }) => {
  const author = await register(request, "prolific");
  const tag = unique("paged");
  for (let n = 1; n <= 12; n++) {
    await publish(request, author, {
      title: `Part ${n} ${tag}`,
      description: `Part ${n}`,
      body: `Part ${n} of twelve.`,
      tagList: [tag],
    });
  }

  await page.goto(`/?tag=${tag}`);
  const titles = page.locator(".article-preview h1");
  await expect(titles).toHaveCount(10);
  await expect(titles.first()).toHaveText(`Part 12 ${tag}`); // newest first
  const pages = page.getByRole("navigation", { name: "Pages" });
  await expect(pages.getByRole("link")).toHaveText(["1", "2"]);
  await expect(pages.getByRole("link", { name: "Page 1" })).toHaveAttribute("aria-current", "page");

  await pages.getByRole("link", { name: "Page 2" }).click();
  await expect(page).toHaveURL(new RegExp(`\\?tag=${tag}&page=2$`));
  await expect(titles).toHaveText([`Part 2 ${tag}`, `Part 1 ${tag}`]);

  await page.reload();
  await expect(titles).toHaveText([`Part 2 ${tag}`, `Part 1 ${tag}`]);
  await expect(pages.getByRole("link", { name: "Page 2" })).toHaveAttribute("aria-current", "page");
});
