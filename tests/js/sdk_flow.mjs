// Drives a threadloom server with the official LangGraph JS SDK (@langchain/langgraph-sdk),
// as a JS application would, and prints what it saw as one JSON object on stdout. The
// assertions are in tests/test_langgraph_js_sdk.py; this file only records.
//
//   node sdk_flow.mjs http://127.0.0.1:PORT
import { Client } from "@langchain/langgraph-sdk";

const client = new Client({ apiUrl: process.argv[2], apiKey: null });
const seen = {};

async function collect(stream) {
  const parts = [];
  for await (const part of stream) parts.push({ event: part.event, data: part.data });
  return parts;
}

const of = (parts, name) => parts.filter((p) => p.event === name).map((p) => p.data);

// Assistants: each graph of langgraph.json has its default assistant.
const assistants = await client.assistants.search({ limit: 100 });
seen.graphs = assistants.map((a) => a.graph_id).sort();
const approval = assistants.find((a) => a.graph_id === "approval");
seen.approvalSchema = Object.keys((await client.assistants.getSchemas(approval.assistant_id)).state_schema.properties).sort();
const made = await client.assistants.create({ graphId: "approval", name: "js reviewer", metadata: { from: "js" } });
seen.madeAssistant = { graph_id: made.graph_id, name: made.name, version: made.version };
seen.countedApproval = await client.assistants.count({ graphId: "approval" });

// The tool-calling agent, streamed: values, updates and LLM tokens.
const thread = await client.threads.create({ metadata: { client: "js" } });
const agentParts = await collect(client.runs.stream(thread.thread_id, "tool_agent", {
  input: { messages: [{ role: "user", content: "what is the weather in Paris" }] },
  streamMode: ["values", "updates", "messages-tuple"],
}));
seen.agentFirstEvent = agentParts[0].event;
seen.agentFinal = of(agentParts, "values").at(-1).messages.map((m) => [m.type, m.content]);
seen.agentUpdates = of(agentParts, "updates").map((u) => Object.keys(u));
seen.agentTokens = of(agentParts, "messages")
  .filter(([chunk]) => chunk.type === "AIMessageChunk")
  .map(([chunk]) => chunk.content)
  .join("");
const state = await client.threads.getState(thread.thread_id);
seen.agentState = { next: state.next, last: state.values.messages.at(-1).content };
const history = await client.threads.getHistory(thread.thread_id, { limit: 100 });
seen.historyLength = history.length;
seen.threadStatus = (await client.threads.get(thread.thread_id)).status;

// An interrupt for approval, then a resume with a Command.
const review = await client.threads.create();
const waited = await client.runs.wait(review.thread_id, "approval", { input: { topic: "cats" } });
seen.interrupt = waited.__interrupt__.map((i) => i.value);
seen.interruptedStatus = (await client.threads.get(review.thread_id)).status;
const resumed = await collect(client.runs.stream(review.thread_id, "approval", {
  command: { resume: { approved: true } },
  streamMode: "values",
}));
seen.published = of(resumed, "values").at(-1).published;

// Custom events from a threadless run; a background run joined.
const custom = await collect(client.runs.stream(null, "progress", { input: { steps: 2 }, streamMode: "custom" }));
seen.custom = of(custom, "custom");
const background = await client.threads.create();
const started = await client.runs.create(background.thread_id, "progress", { input: { steps: 1 } });
seen.joined = await client.runs.join(background.thread_id, started.run_id);
seen.runs = (await client.runs.list(background.thread_id)).map((r) => r.status);

// The thread's stream of all its runs, from its first; then the thread pruned away.
const lifecycle = [];
for await (const part of client.threads.joinStream(background.thread_id, { lastEventId: "-", streamMode: "lifecycle" })) {
  lifecycle.push(part.data);
  if (part.data.status === "run_done") break;
}
seen.threadStream = lifecycle;
seen.startedRun = started.run_id;
seen.pruned = await client.threads.prune([background.thread_id]);

// The store, which graphs also see.
await client.store.putItem(["js", "notes"], "first", { text: "hello" });
seen.storeGet = (await client.store.getItem(["js", "notes"], "first")).value;
seen.storeSearch = (await client.store.searchItems(["js"], { filter: { text: "hello" } })).items.map((i) => i.key);
seen.storeNamespaces = (await client.store.listNamespaces({ prefix: ["js"] })).namespaces;
await client.store.deleteItem(["js", "notes"], "first");
seen.storeAfterDelete = await client.store.getItem(["js", "notes"], "first");

// Crons: made, found, removed.
const cron = await client.crons.create(approval.assistant_id, { schedule: "0 3 * * *", input: { topic: "dogs" } });
seen.cronFound = (await client.crons.search({ assistantId: approval.assistant_id })).some((c) => c.cron_id === cron.cron_id);
await client.crons.delete(cron.cron_id);
seen.cronAfterDelete = (await client.crons.search({ assistantId: approval.assistant_id })).some((c) => c.cron_id === cron.cron_id);

// Errors reach the SDK with their HTTP status.
try {
  await client.assistants.get("00000000-0000-0000-0000-000000000000");
  seen.missingAssistant = "no error";
} catch (error) {
  seen.missingAssistant = error.status;
}

process.stdout.write(JSON.stringify(seen));
