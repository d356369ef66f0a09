// A web backend's use of Touchstone through @connectrpc/connect-node, with no generated
// code: the services are read from the API's descriptor set (the file of argv[3]).
// Usage: node client.mjs BASE_URL DESCRIPTORS API_KEY CA_PEM
// Prints one JSON object: what was acknowledged, a campaign's stats, the feed's first item.
import { readFileSync } from "node:fs";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { createFileRegistry, fromBinary, toJson } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";

const [baseUrl, descriptors, apiKey, caPem] = process.argv.slice(2);
const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(descriptors)));
const transport = createConnectTransport({
  baseUrl,
  httpVersion: "1.1",
  nodeOptions: caPem ? { ca: readFileSync(caPem) } : {},
  interceptors: [(next) => async (req) => {
    if (apiKey) req.header.set("authorization", `Bearer ${apiKey}`);
    return next(req);
  }],
});
const service = (name) => createClient(registry.getService(`touchstone.v1.${name}`), transport);
const ingest = service("IngestService");
const config = service("ConfigService");
const query = service("QueryService");

const T0 = 1767225600000n;
const tenant = "shop";
const out = {};
await config.createGoal({ tenant, goal: { id: "checkin", kind: 2, eventName: "checkin" } });
await config.saveBadge({ tenant, badge: { id: "vip", name: "VIP", active: true } });
out.messages = (await ingest.registerMessages({ messages: [{ tenant, msgHash: "m1", campaignId: "spring", channel: 1, sentAt: T0 }] })).accepted.toString();
out.touches = (await ingest.recordTouches({ touches: [{ tenant, eventId: "t1", msgHash: "m1", customerId: "ann", touch: 3, ts: T0 }] })).accepted.toString();
out.events = (await ingest.postEvents({ events: [{ tenant, eventId: "e1", customerId: "ann", name: "checkin", ts: T0 + 60000n, msgHash: "m1" }] })).accepted.toString();
await ingest.issueBadge({ tenant, eventId: "b1", customerId: "ann", badgeId: "vip", ts: T0, actor: "node", source: 0 });

// Reports lag attribution by a moment: ask until the event is credited.
const statsSchema = registry.getMessage("touchstone.v1.CampaignStats");
// (A campaign is known once its message is attributed: NOT_FOUND until then.)
for (let attempt = 0; attempt < 100; attempt++) {
  try {
    const stats = await query.getCampaignStats({ tenant, campaignId: "spring" });
    out.stats = toJson(statsSchema, stats);
    if (stats.goals.some((goal) => goal.goalId === "checkin" && goal.conversions > 0n)) break;
  } catch (err) {
    if (ConnectError.from(err).code !== Code.NotFound) throw err;
  }
  await new Promise((resolve) => setTimeout(resolve, 100));
}

// The badge feed: a server stream; its first item (leaving the loop cancels the call), or
// an error after 30 s without one.
for await (const item of query.watchBadgeEvents({ tenant, fromStart: true }, { signal: AbortSignal.timeout(30000) })) {
  out.feed = toJson(registry.getMessage("touchstone.v1.BadgeFeedItem"), item);
  break;
}
console.log(JSON.stringify(out));
