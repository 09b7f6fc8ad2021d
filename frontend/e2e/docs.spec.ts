// The API's docs page (/docs, Swagger UI) works under its own Content-Security-Policy:
// scripts from the app's files only, yet an operation can be tried from the page.
import { expect, test } from "./fixtures";

test("the docs page runs an operation from the browser without breaking its policy", async ({ page }) => {
  await page.goto("/docs");
  const operation = page.locator("#operations-Tags-GetTags");
  await operation.getByRole("button", { name: "GET /api/tags List the tags" }).click();
  await operation.getByRole("button", { name: "Try it out" }).click();
  await operation.getByRole("button", { name: "Execute" }).click();

  await expect(operation.locator(".live-responses-table tbody .response-col_status").first()).toHaveText("200");
  await expect(operation.locator(".live-responses-table")).toContainText('"tags"');
});
