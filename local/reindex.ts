/**
 * The ledger's status index (`gsi1`), rebuilt after the local store was not closed cleanly.
 *
 * dynalite updates an item in three separate LevelDB writes: the old index entry is deleted, the
 * new one put, then the item itself. A process killed in between leaves the index disagreeing
 * with the table: an item with no index entry at all (a "running" run that `listRuns` cannot see,
 * so the restart never resumes it: a run lost), or an index entry copied from a state the item never
 * reached or has left. Seen in `npm run bench:durability` (200 POs, SIGKILLs): one run left
 * "running" with no index entry, one stale "running" entry, one stale "saved" entry. DynamoDB's
 * own GSIs converge; dynalite's never do, so the local start repairs them through the API:
 *
 * 0. a record whose own index keys disagree with its status (a repair cut by a kill leaves that) is
 *    written again with the keys its status gives;
 * 1. every index entry of a known partition whose item is gone or now lies elsewhere is removed, by
 *    writing the item once under the entry's keys (dynalite replaces the entry) and once as it is
 *    (dynalite deletes the entry it just replaced); an entry of a deleted item, by writing and
 *    deleting that item; an entry whose copy differs from its item is written again;
 * 2. every item that carries `gsi1pk` and has no entry is written again as it is (dynalite then
 *    puts its entry).
 *
 * It runs at start only, before any run is started, so nothing writes concurrently.
 */
import {
  type AttributeValue,
  DeleteItemCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  ScanCommand,
} from "@aws-sdk/client-dynamodb";
import { canonicalJson } from "../lambdas/shared/ledger/ledger.js";

type Item = Record<string, AttributeValue>;

export interface ReindexResult {
  /** Items carrying an index key. */
  items: number;
  /** Items that had no index entry (invisible to index queries), now indexed. */
  missingEntries: number;
  /** Index entries removed or refreshed: their item is gone, lies elsewhere, or differs from the copy. */
  staleEntries: number;
}

const id = (i: Item) => `${i.pk?.S}\u0000${i.sk?.S}`;
const keysOf = (i: Item) => ({ gsi1pk: i.gsi1pk, gsi1sk: i.gsi1sk }) as Item;
const sameKeys = (a: Item, b: Item) => a.gsi1pk?.S === b.gsi1pk?.S && a.gsi1sk?.S === b.gsi1sk?.S;
/**
 * The index keys a record must carry, from its own fields (the ledger writes `RUNSTATUS#<status>`
 * and `APPROVAL#<status>` with `createdAt`): a record whose keys a cut repair left elsewhere is
 * put back where its status says, so a kill during this repair cannot hide a run either.
 */
function expectedKeys(item: Item): { gsi1pk: AttributeValue; gsi1sk: AttributeValue } | undefined {
  const prefix = /^(RUNSTATUS|APPROVAL)#/.exec(item.gsi1pk?.S ?? "")?.[0];
  const status = item.status?.S;
  const createdAt = item.createdAt?.S;
  if (!prefix || !status || !createdAt) return undefined;
  return { gsi1pk: { S: `${prefix}${status}` }, gsi1sk: { S: createdAt } };
}

/** Rebuilds `gsi1` of `table`; `partitions` are index partitions to sweep besides those items name. */
export async function reindexLedger(
  client: DynamoDBClient,
  table: string,
  partitions: readonly string[],
): Promise<ReindexResult> {
  const items = new Map<string, Item>();
  let start: Item | undefined;
  do {
    const page = await client.send(
      new ScanCommand({
        TableName: table,
        FilterExpression: "attribute_exists(gsi1pk)",
        ExclusiveStartKey: start,
        ConsistentRead: true,
      }),
    );
    for (const item of page.Items ?? []) items.set(id(item), item);
    start = page.LastEvaluatedKey;
  } while (start);

  const indexed = new Set<string>();
  let staleEntries = 0;
  for (const [key, item] of items) {
    const want = expectedKeys(item);
    if (!want || (item.gsi1pk?.S === want.gsi1pk.S && item.gsi1sk?.S === want.gsi1sk.S)) continue;
    const fixed = { ...item, ...want };
    await client.send(new PutItemCommand({ TableName: table, Item: fixed }));
    items.set(key, fixed);
    staleEntries++;
  }
  const sweep = new Set([...partitions, ...[...items.values()].map((i) => i.gsi1pk?.S ?? "")].filter(Boolean));
  for (const partition of sweep) {
    let from: Item | undefined;
    const entries: Item[] = [];
    do {
      const page = await client.send(
        new QueryCommand({
          TableName: table,
          IndexName: "gsi1",
          KeyConditionExpression: "gsi1pk = :p",
          ExpressionAttributeValues: { ":p": { S: partition } },
          ExclusiveStartKey: from,
        }),
      );
      entries.push(...(page.Items ?? []));
      from = page.LastEvaluatedKey;
    } while (from);
    for (const entry of entries) {
      const current = items.get(id(entry));
      if (current && sameKeys(current, entry)) {
        indexed.add(id(entry));
        if (canonicalJson(current) === canonicalJson(entry)) continue;
        // The entry holds a copy from a write whose item put never happened: refresh it.
        await client.send(new PutItemCommand({ TableName: table, Item: current }));
      } else {
        // Written once under the entry's keys (dynalite replaces that entry), then as it is: under its
        // own keys, without keys, or gone (each of which deletes the replaced entry).
        const key = { pk: entry.pk, sk: entry.sk } as Item;
        const real =
          current ?? (await client.send(new GetItemCommand({ TableName: table, Key: key, ConsistentRead: true }))).Item;
        await client.send(new PutItemCommand({ TableName: table, Item: real ? { ...real, ...keysOf(entry) } : entry }));
        if (real) await client.send(new PutItemCommand({ TableName: table, Item: real }));
        else await client.send(new DeleteItemCommand({ TableName: table, Key: key }));
      }
      staleEntries++;
    }
  }

  let missingEntries = 0;
  for (const [key, item] of items) {
    // dynalite indexes an item only when it has both index keys.
    if (indexed.has(key) || item.gsi1sk?.S === undefined) continue;
    await client.send(new PutItemCommand({ TableName: table, Item: item }));
    missingEntries++;
  }
  return { items: items.size, missingEntries, staleEntries };
}
