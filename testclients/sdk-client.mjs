// A TypeScript SDK client for the tests: connects over stdio or streamable
// HTTP, lists the tools, calls one, and prints one JSON object on stdout.
// usage: node sdk-client.mjs stdio TOOL ARGS_JSON -- COMMAND ARG...
//        node sdk-client.mjs http  TOOL ARGS_JSON URL TOKEN
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [mode, tool, argsJSON, ...rest] = process.argv.slice(2);
let transport;
if (mode === "stdio") {
  const cmd = rest[0] === "--" ? rest.slice(1) : rest;
  transport = new StdioClientTransport({ command: cmd[0], args: cmd.slice(1), stderr: "ignore" });
} else if (mode === "http") {
  const [url, token] = rest;
  transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
  });
} else {
  console.error("mode must be stdio or http");
  process.exit(2);
}
const client = new Client({ name: "swarm-sdk-test", version: "1.0.0" });
await client.connect(transport);
const tools = await client.listTools();
const result = await client.callTool({ name: tool, arguments: JSON.parse(argsJSON) });
console.log(JSON.stringify({
  server: client.getServerVersion(),
  protocol: transport.protocolVersion ?? null,
  tools: tools.tools.map((t) => t.name),
  result,
}));
await client.close();
