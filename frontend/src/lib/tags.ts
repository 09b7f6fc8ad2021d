/**
 * The editor's tag input: what was typed becomes tags (commas separate several),
 * trimmed, without empty or repeated ones, in the order first typed.
 */
export function addTags(tags: readonly string[], typed: string): string[] {
  const result = [...tags];
  for (const raw of typed.split(",")) {
    const tag = raw.trim();
    if (tag !== "" && !result.includes(tag)) result.push(tag);
  }
  return result;
}

export function removeTag(tags: readonly string[], tag: string): string[] {
  return tags.filter((t) => t !== tag);
}
