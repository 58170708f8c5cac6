// The classic tutorial shape on Redis: one file, Express, node-redis, GET /words lists the first
// 100, PUT /words adds one. Same keys as the gateway (a sorted set of ids, a hash per word).
import express from "express";
import { createClient } from "redis";
import { v7 as uuidv7 } from "uuid";

const app = express();
app.use(express.json());
const client = createClient({ url: process.env.REDIS_URL });
await client.connect();

app.get("/words", async (_req, res) => {
  const ids = await client.zRange("grand_tour:words:ids", 0, 99);
  const words = await Promise.all(
    ids.map((id) => client.hGetAll(`grand_tour:word:${id}`)),
  );
  res.json(words.map(({ id, word, definition }) => ({ id, word, definition })));
});

app.put("/words", async (req, res) => {
  const id = uuidv7();
  await client.multi()
    .hSet(`grand_tour:word:${id}`, {
      id,
      word: req.body.word,
      definition: req.body.definition,
      createdAt: new Date().toISOString(),
    })
    .zAdd("grand_tour:words:ids", { score: 0, value: id })
    .exec();
  res.sendStatus(204);
});

const server = app.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  console.log(`Listening on http://127.0.0.1:${server.address().port}/`);
});
