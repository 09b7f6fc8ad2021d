// What the end-to-end tests share: users made through the API (fast, and each
// test's own), and the few steps every journey takes through the UI.
import { test as base, expect, type APIRequestContext, type Page } from "@playwright/test";
import { mkdirSync } from "node:fs";
import path from "node:path";
import type { Article, NewArticle, User } from "../src/api/types";

export interface Account {
  username: string;
  email: string;
  password: string;
  token: string;
}

let counter = 0;
/**
 * A name no other test or run uses: the database is fresh, but tests share it.
 * The process id keeps two workers apart when they start in the same millisecond.
 */
export function unique(prefix: string): string {
  counter += 1;
  return `${prefix}${Date.now().toString(36)}${process.pid.toString(36)}x${counter}`;
}

export async function register(request: APIRequestContext, prefix = "user"): Promise<Account> {
  const username = unique(prefix);
  const account = { username, email: `${username}@example.com`, password: "correct horse battery" };
  const response = await request.post("/api/users", { data: { user: account } });
  expect(response.status(), await response.text()).toBe(201);
  const { user } = (await response.json()) as { user: User };
  return { ...account, token: user.token };
}

export async function publish(
  request: APIRequestContext,
  author: Account,
  article: NewArticle,
): Promise<string> {
  const response = await request.post("/api/articles", {
    data: { article },
    headers: { Authorization: `Token ${author.token}` },
  });
  expect(response.status(), await response.text()).toBe(201);
  return ((await response.json()) as { article: Article }).article.slug;
}

export async function signIn(page: Page, account: Pick<Account, "email" | "password" | "username">) {
  await page.goto("/login");
  await page.getByLabel("Email").fill(account.email);
  await page.getByLabel("Password").fill(account.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: account.username })).toBeVisible();
}

/** Saves a screenshot of the page in e2e-results/screenshots (`make screenshots` copies two to docs/). */
export async function screenshot(page: Page, name: string): Promise<void> {
  const directory = path.resolve("e2e-results", "screenshots");
  mkdirSync(directory, { recursive: true });
  await page.screenshot({ path: path.join(directory, `${name}.png`), fullPage: false });
}

/** The page's Content-Security-Policy violations, as Chromium reports them on the console. */
export interface PolicyViolations {
  /** The violations seen so far, removed from the list (a test that provokes some takes them). */
  take(): string[];
}

/**
 * Every test fails on a page error, a dialog (an alert() from injected script would be one) or a
 * Content-Security-Policy violation it did not take: the app must work within its policy.
 */
export const test = base.extend<{ violations: PolicyViolations; guarded: void }>({
  violations: async ({ page }, use) => {
    const seen: string[] = [];
    page.on("console", (message) => {
      if (message.text().includes("Content Security Policy")) seen.push(message.text());
    });
    await use({ take: () => seen.splice(0) });
  },
  guarded: [
    async ({ page, violations }, use) => {
      const problems: string[] = [];
      page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
      page.on("dialog", (dialog) => {
        problems.push(`dialog: ${dialog.message()}`);
        void dialog.dismiss();
      });
      await use();
      expect([...problems, ...violations.take().map((text) => `policy violation: ${text}`)]).toEqual([]);
    },
    { auto: true },
  ],
});

export { expect };
