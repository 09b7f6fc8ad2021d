import { describe, expect, it } from "vitest";
import { renderMarkdown } from "./markdown";

function rendered(markdown: string): HTMLElement {
  const container = document.createElement("div");
  container.innerHTML = renderMarkdown(markdown);
  return container;
}

describe("renderMarkdown", () => {
  it("renders headings, emphasis, lists, code and links", () => {
    const html = rendered("## Title\n\nSome *emphasis* and `code`.\n\n- one\n- two\n\n[docs](/docs)");
    expect(html.querySelector("h2")?.textContent).toBe("Title");
    expect(html.querySelector("em")?.textContent).toBe("emphasis");
    expect(html.querySelector("code")?.textContent).toBe("code");
    expect(html.querySelectorAll("li")).toHaveLength(2);
    expect(html.querySelector("a")?.getAttribute("href")).toBe("/docs");
  });

  it("drops script elements", () => {
    const html = rendered("Hello <script>window.pwned = true</script> world");
    expect(html.querySelector("script")).toBeNull();
    expect(html.textContent).toContain("Hello");
  });

  it("keeps an image but drops its event handlers", () => {
    const html = rendered('<img src="x.png" alt="x" onerror="window.pwned = true">');
    const image = html.querySelector("img");
    expect(image?.getAttribute("src")).toBe("x.png");
    expect(image?.hasAttribute("onerror")).toBe(false);
  });

  it("drops javascript: links", () => {
    const html = rendered("[click](javascript:alert(1))");
    expect(html.querySelector("a")?.getAttribute("href") ?? "").not.toMatch(/javascript:/i);
  });
});
