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
  violations,
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
  // Chromium reports the onerror handler as refused when the sanitiser parses the body
  // (DOMParser, where nothing runs anyway): the only violations the payload causes.
  for (const violation of violations.take()) expect(violation).toContain("Executing inline event handler");
});

// The second line of defence: what a sanitiser that failed let through, the browser refuses to
// run, because the app's Content-Security-Policy allows scripts from its own files only.
test("a script, a handler or a javascript: link that gets past the sanitiser is refused by the page's policy", async ({
  page,
  request,
  violations,
}) => {
  type Watched = Window & { __xss?: string; __refused?: string[] };
  const author = await register(request, "mallory");
  const slug = await publish(request, author, {
    title: "A harmless article",
    description: "Nothing to see",
    body: "Plain words.",
  });
  await page.goto(`/article/${slug}`);
  await expect(page.locator(".article-body")).toContainText("Plain words.");

  // The browser's own record of what its policy refused (a listener, not a script in the page).
  await page.evaluate(() => {
    const watched = window as Watched;
    watched.__refused = [];
    document.addEventListener("securitypolicyviolation", (event) => watched.__refused?.push(event.effectiveDirective));
  });
  // The sanitiser failed: its output goes into the article's body as it came.
  await page.evaluate(() => {
    const body = document.querySelector(".article-body")!;
    const script = document.createElement("script");
    script.textContent = "window.__xss = 'script'";
    body.append(script);
    body.insertAdjacentHTML(
      "beforeend",
      `<img src="/missing.png" alt="" onerror="window.__xss = 'onerror'">` +
        `<a id="smuggled" href="javascript:window.__xss = 'link'">smuggled link</a>`,
    );
  });
  await page.locator("#smuggled").click();
  // Nor may the page's code turn text into code (eval from one of its own tasks: code that
  // page.evaluate runs directly is the debugger's, which the policy does not govern).
  await page.evaluate(() =>
    setTimeout(() => {
      try {
        (window as Watched).__xss = String(window.eval("'eval'"));
      } catch {
        // refused: EvalError
      }
    }),
  );

  await expect
    .poll(() => page.evaluate(() => [...((window as Watched).__refused ?? [])].sort()))
    .toEqual(["script-src", "script-src-attr", "script-src-elem", "script-src-elem"]);
  expect(await page.evaluate(() => (window as Watched).__xss)).toBeUndefined();
  // The console reports the three it blocked outright (not the eval, whose EvalError the code
  // caught); its messages arrive on their own time.
  const reported: string[] = [];
  await expect
    .poll(() => {
      reported.push(...violations.take());
      return reported.length;
    })
    .toBe(3);
});
