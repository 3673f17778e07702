// Drives hienergy-mcp with the official TypeScript SDK client, the way
// Inspector, Gemini CLI and opencode do: list the tools (which arms the
// SDK's outputSchema validation), then call them. Every call's outcome is
// printed as one JSON document on stdout for tests/ts_sdk.rs to check.
//
// Usage: node client.mjs SPEC.json, where SPEC is
//   {"command": "/path/to/hienergy-mcp", "sessions": [
//     {"env": {...}, "calls": [{"label": "...", "tool": "add_contact", "arguments": {...}}]}]}
import { readFileSync } from "node:fs";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const spec = JSON.parse(readFileSync(process.argv[2], "utf8"));
const report = { sessions: [] };

for (const session of spec.sessions) {
  const transport = new StdioClientTransport({
    command: spec.command,
    args: session.args ?? [],
    env: { PATH: process.env.PATH ?? "", ...session.env },
    stderr: "ignore",
  });
  const client = new Client({ name: "ts-sdk-conformance", version: "1.0.0" });
  const out = { calls: [] };
  try {
    await client.connect(transport);
    out.protocolVersion = transport._protocolVersion ?? null;
    out.server = client.getServerVersion();
    const listed = await client.listTools();
    out.tools = listed.tools.map((t) => ({ name: t.name, hasOutputSchema: !!t.outputSchema }));
    for (const call of session.calls) {
      try {
        const result = await client.callTool({ name: call.tool, arguments: call.arguments });
        out.calls.push({
          label: call.label,
          isError: result.isError ?? false,
          structuredContent: result.structuredContent ?? null,
          text: (result.content ?? []).filter((c) => c.type === "text").map((c) => c.text).join("\n"),
        });
      } catch (e) {
        out.calls.push({ label: call.label, thrown: String(e?.message ?? e) });
      }
    }
  } catch (e) {
    out.failed = String(e?.message ?? e);
  } finally {
    await client.close().catch(() => {});
  }
  report.sessions.push(out);
}
process.stdout.write(JSON.stringify(report) + "\n");
