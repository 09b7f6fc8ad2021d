import { describe, expect, it } from "vitest";
import { getPosition, notePosition, parsePosition, positionMiddleware } from "./client";

describe("the database position (read-your-writes with replicas)", () => {
  it("reads PostgreSQL's WAL position as a number", () => {
    expect(parsePosition("16/B374D848")).toBe((0x16n << 32n) | 0xb374d848n);
    expect(parsePosition("yesterday")).toBeNull();
  });

  it("keeps the latest position, whatever order the answers arrive in", () => {
    notePosition("0/3000000");
    notePosition("0/2000000");
    notePosition("not a position");
    expect(getPosition()).toBe("0/3000000");
    notePosition("1/0");
    expect(getPosition()).toBe("1/0");
  });

  it("sends the position on reads only", async () => {
    notePosition("2/0");
    const onRequest = positionMiddleware.onRequest!;
    const read = new Request("http://api.test/api/tags");
    const write = new Request("http://api.test/api/articles", { method: "POST" });
    const options = {} as Parameters<typeof onRequest>[0];
    const sentRead = (await onRequest({ ...options, request: read })) as Request;
    const sentWrite = (await onRequest({ ...options, request: write })) as Request;
    expect(sentRead.headers.get("X-Database-Position")).toBe("2/0");
    expect(sentWrite.headers.get("X-Database-Position")).toBeNull();
  });
});
