// An article's body is markdown written by anyone: marked turns it into HTML,
// DOMPurify removes whatever could run (scripts, event handlers, javascript: URLs).
import DOMPurify from "dompurify";
import { marked } from "marked";

export function renderMarkdown(markdown: string): string {
  const html = marked.parse(markdown, { async: false, gfm: true });
  return DOMPurify.sanitize(html);
}
