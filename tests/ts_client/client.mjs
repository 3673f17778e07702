// Drives hienergy-mcp with the official TypeScript SDK client, the way
// Inspector, Gemini CLI and opencode do: list the tools (which arms the
// SDK's outputSchema validation), then call them. Every call's outcome is
// printed as one JSON document on stdout for tests/ts_sdk.rs to check.
//
// Usage: node client.mjs SPEC.json, where SPEC is
//   {"command": "/path/to/hienergy-mcp", "sessions": [
//     {"env": {...}, "calls": [{"label": "...", "tool": "add_contact", "arguments": {...}}]}]}
// A session with "elicit": {"pick": N} declares elicitation and answers each
// elicitation/create (after the SDK has validated it) by accepting the Nth
// choice of its one enum property; the requests are reported in "elicited".
import { readFileSync } from "node:fs";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { ElicitRequestSchema } from "@modelcontextprotocol/sdk/types.js";

const spec = JSON.parse(readFileSync(process.argv[2], "utf8"));
const report = { sessions: [] };

for (const session of spec.sessions) {
  const transport = new StdioClientTransport({
    command: spec.command,
    args: session.args ?? [],
    env: { PATH: process.env.PATH ?? "", ...session.env },
    stderr: "ignore",
  });
  const capabilities = session.elicit ? { elicitation: {} } : {};
  const client = new Client({ name: "ts-sdk-conformance", version: "1.0.0" }, { capabilities });
  const out = { calls: [] };
  if (session.elicit) {
    out.elicited = [];
    client.setRequestHandler(ElicitRequestSchema, async (request) => {
      const { message, requestedSchema } = request.params;
      out.elicited.push({ message, requestedSchema });
      const [field, property] = Object.entries(requestedSchema.properties)[0];
      return { action: "accept", content: { [field]: property.enum[session.elicit.pick] } };
    });
  }
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
