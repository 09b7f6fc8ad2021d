// End-to-end tests in Debian's chromium (never a browser download: CHROMIUM or
// /usr/bin/chromium) against the real backend: gunicorn serving the built app
// and the API on a fresh, migrated SQLite database, on a free port (the
// throwaway environment, ../scripts/throwaway/, removed when the run ends).
import { defineConfig } from "@playwright/test";
import { execFileSync } from "node:child_process";

function freePort(): string {
  const script =
    "const s = require('net').createServer().listen(0, '127.0.0.1', () => " +
    "{ process.stdout.write(String(s.address().port)); s.close(); });";
  return execFileSync(process.execPath, ["-e", script], { encoding: "utf8" });
}

// Chosen once: the workers inherit it, so they talk to the same server.
process.env.E2E_PORT ??= freePort();
const baseURL = `http://127.0.0.1:${process.env.E2E_PORT}`;

export default defineConfig({
  testDir: "e2e",
  outputDir: "test-results",
  timeout: 60_000,
  expect: { timeout: 10_000 },
  workers: 1, // a shared two-core machine; the tests make their own users, so they could run in parallel
  forbidOnly: process.env.CI === "true",
  reporter: [["list"]],
  use: {
    baseURL,
    viewport: { width: 1280, height: 800 },
    trace: "retain-on-failure",
    screenshot: "only-on-failure",
  },
  projects: [
    {
      name: "chromium",
      use: {
        browserName: "chromium",
        launchOptions: {
          executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
          // Nothing but loopback resolves: the app must need no other host.
          args: ["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"],
        },
      },
    },
  ],
  webServer: {
    command: `.venv/bin/python -m scripts.throwaway --port ${process.env.E2E_PORT}`,
    cwd: "..",
    url: `${baseURL}/healthz`,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: "pipe",
    gracefulShutdown: { signal: "SIGTERM", timeout: 10_000 },
  },
});
