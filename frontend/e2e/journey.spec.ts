// A reader becomes a writer: the whole of Conduit, used the way a person uses it.
import { expect, publish, register, screenshot, signIn, test, unique } from "./fixtures";

test("sign up, publish, comment, favorite, follow, settings, unfavorite, unfollow, log out and back in, edit, delete", async ({
  page,
  request,
}) => {
  test.setTimeout(180_000);
  const nav = page.getByRole("navigation", { name: "Main" });
  const tag = unique("tag");
  const title = `Writing on Conduit ${unique("")}`;
  const me = { username: unique("ann"), email: "", password: "correct horse battery" };
  me.email = `${me.username}@example.com`;

  // Another author, with an article to favorite and someone to follow.
  const bob = await register(request, "bob");
  const bobsTitle = `Bob's notes ${unique("")}`;
  const bobsSlug = await publish(request, bob, {
    title: bobsTitle,
    description: "What Bob learnt this week",
    body: "Bob writes *every* week.",
    tagList: ["notes"],
  });

  await test.step("sign up", async () => {
    await page.goto("/");
    await nav.getByRole("link", { name: "Sign up" }).click();
    await page.getByLabel("Username").fill(me.username);
    await page.getByLabel("Email").fill(me.email);
    await page.getByLabel("Password").fill(me.password);
    await page.getByRole("button", { name: "Sign up" }).click();
    await expect(nav.getByRole("link", { name: me.username })).toBeVisible();
    await expect(nav.getByRole("link", { name: "Sign in" })).toHaveCount(0);
  });

  await test.step("publish an article with tags", async () => {
    await nav.getByRole("link", { name: "New Article" }).click();
    await page.getByLabel("Article Title").fill(title);
    await page.getByLabel("What's this article about?").fill("A first article");
    await page.getByLabel("Write your article (in markdown)").fill("## Hello\n\nThis is **markdown**.");
    const tags = page.getByLabel("Enter tags");
    await tags.fill(tag);
    await tags.press("Enter"); // adds the tag, does not submit
    await tags.fill("conduit");
    await tags.press("Enter");
    await expect(page.getByRole("list", { name: "Tags" }).getByRole("listitem")).toHaveText([tag, "conduit"]);
    await screenshot(page, "editor");
    await page.getByRole("button", { name: "Publish Article" }).click();

    await expect(page.getByRole("heading", { level: 1, name: title })).toBeVisible();
    await expect(page.locator(".article-body h2")).toHaveText("Hello");
    await expect(page.locator(".article-body strong")).toHaveText("markdown");
    await expect(page.getByRole("list", { name: "Tags" })).toContainText(tag);
  });

  await test.step("comment on it", async () => {
    await page.getByLabel("Write a comment").fill("First comment!");
    await page.getByRole("button", { name: "Post Comment" }).click();
    await expect(page.getByRole("article", { name: `Comment by ${me.username}` })).toContainText("First comment!");
    await expect(page.getByLabel("Write a comment")).toHaveValue("");
    await screenshot(page, "article");
  });

  await test.step("favorite Bob's article and follow Bob", async () => {
    await page.goto(`/article/${bobsSlug}`);
    await page.getByRole("button", { name: "Favorite Article (0)" }).first().click();
    await expect(page.getByRole("button", { name: "Unfavorite Article (1)" })).toHaveCount(2); // banner and foot
    await page.getByRole("button", { name: `Follow ${bob.username}` }).first().click();
    await expect(page.getByRole("button", { name: `Unfollow ${bob.username}` }).first()).toBeVisible();
  });

  await test.step("the global feed shows the favorite with its count", async () => {
    await nav.getByRole("link", { name: "Home" }).click();
    await page.getByRole("link", { name: "Global Feed" }).click();
    const bobsPreview = page.locator(".article-preview", { hasText: bobsTitle });
    const heart = bobsPreview.getByRole("button", { name: `Unfavorite "${bobsTitle}" (1)` });
    await expect(heart).toHaveText("1");
    await expect(heart).toHaveAttribute("aria-pressed", "true");
    await expect(page.locator(".article-preview", { hasText: title })).toBeVisible();
  });

  await test.step("filter by tag", async () => {
    await page.getByRole("navigation", { name: "Popular Tags" }).getByRole("link", { name: tag }).click();
    await expect(page.getByRole("link", { name: tag, exact: true }).first()).toHaveAttribute("aria-current", "page");
    await expect(page.locator(".article-preview h1")).toHaveText([title]);
  });

  await test.step("your feed has the followed author's articles", async () => {
    await page.getByRole("link", { name: "Your Feed" }).click();
    await expect(page.locator(".article-preview h1")).toHaveText([bobsTitle]);
  });

  await test.step("settings: a bio shows on the profile", async () => {
    await nav.getByRole("link", { name: "Settings" }).click();
    await page.getByLabel("Short bio about you").fill("I write about Conduit.");
    await screenshot(page, "settings");
    await page.getByRole("button", { name: "Update Settings" }).click();
    await expect(page).toHaveURL(new RegExp(`/profile/${me.username}$`));
    await expect(page.getByText("I write about Conduit.")).toBeVisible();
    await expect(page.locator(".article-preview h1")).toHaveText([title]);
    await page.getByRole("link", { name: "Favorited Articles" }).click();
    await expect(page.locator(".article-preview h1")).toHaveText([bobsTitle]);
    await screenshot(page, "profile");
  });

  await test.step("unfavorite from the list, unfollow from the profile", async () => {
    await page.getByRole("button", { name: `Unfavorite "${bobsTitle}" (1)` }).click();
    await expect(page.getByText("No articles are here... yet.")).toBeVisible(); // no favorites left
    await nav.getByRole("link", { name: "Home" }).click();
    await page.getByRole("link", { name: "Global Feed" }).click();
    const bobsPreview = page.locator(".article-preview", { hasText: bobsTitle });
    await expect(bobsPreview.getByRole("button", { name: `Favorite "${bobsTitle}" (0)` })).toHaveAttribute(
      "aria-pressed",
      "false",
    );
    await bobsPreview.getByRole("link", { name: bob.username }).click();
    await expect(page.getByRole("heading", { name: bob.username })).toBeVisible();
    await page.getByRole("button", { name: `Unfollow ${bob.username}` }).click();
    await expect(page.getByRole("button", { name: `Follow ${bob.username}` })).toHaveAttribute("aria-pressed", "false");
    await nav.getByRole("link", { name: "Home" }).click();
    await page.getByRole("link", { name: "Your Feed" }).click();
    await expect(page.getByText("No articles are here... yet.")).toBeVisible();
  });

  await test.step("log out", async () => {
    await nav.getByRole("link", { name: "Settings" }).click();
    await page.getByRole("button", { name: "Or click here to logout." }).click();
    await expect(nav.getByRole("link", { name: "Sign in" })).toBeVisible();
    await expect(nav.getByRole("link", { name: me.username })).toHaveCount(0);
  });

  await test.step("anonymous: the feed and the article, read only", async () => {
    await expect(page.getByRole("heading", { name: "conduit", exact: true })).toBeVisible();
    await expect(page.getByRole("link", { name: "Your Feed" })).toHaveCount(0);
    await screenshot(page, "home");
    await page.locator(".article-preview", { hasText: title }).getByRole("link", { name: new RegExp(title) }).click();
    await expect(page.getByRole("heading", { level: 1, name: title })).toBeVisible();
    await expect(page.getByText("First comment!")).toBeVisible();
    await expect(page.getByLabel("Write a comment")).toHaveCount(0);
    await expect(page.getByRole("link", { name: "Edit Article" })).toHaveCount(0);
  });

  await test.step("log in and edit the article", async () => {
    await signIn(page, me);
    await page.goto("/");
    await page.getByRole("link", { name: "Global Feed" }).click();
    await page.locator(".article-preview", { hasText: title }).getByRole("link", { name: new RegExp(title) }).click();
    await page.getByRole("link", { name: "Edit Article" }).first().click();
    await expect(page.getByLabel("Article Title")).toHaveValue(title);
    await page.getByRole("button", { name: `Remove tag conduit` }).click();
    await page.getByLabel("Article Title").fill(`${title} (revised)`);
    await page.getByRole("button", { name: "Publish Article" }).click();
    await expect(page.getByRole("heading", { level: 1, name: `${title} (revised)` })).toBeVisible();
    await expect(page.getByRole("list", { name: "Tags" })).toHaveText(tag);
  });

  await test.step("delete the comment", async () => {
    const comment = page.getByRole("article", { name: `Comment by ${me.username}` });
    await comment.getByRole("button", { name: "Delete comment" }).click();
    await expect(comment).toHaveCount(0);
    await page.reload();
    await expect(page.getByText("First comment!")).toHaveCount(0);
  });

  await test.step("delete the article", async () => {
    await page.getByRole("button", { name: "Delete Article" }).first().click();
    await expect(page).toHaveURL(/\/$/);
    await page.getByRole("link", { name: "Global Feed" }).click();
    await expect(page.locator(".article-preview", { hasText: bobsTitle })).toBeVisible();
    await expect(page.locator(".article-preview", { hasText: title })).toHaveCount(0);
  });
});
