// The classic tutorial shape on PostgreSQL: one file, Express, node-postgres's Pool with its
// defaults, GET /words lists the first 100, PUT /words adds one. Same table as the gateway.
import express from "express";
import pg from "pg";
import { v7 as uuidv7 } from "uuid";

const app = express();
app.use(express.json());
const pool = new pg.Pool({ connectionString: process.env.POSTGRESQL_URL });

app.get("/words", async (_req, res) => {
  const result = await pool.query(
    "SELECT id, word, definition FROM words ORDER BY id LIMIT 100",
  );
  res.json(result.rows);
});

app.put("/words", async (req, res) => {
  await pool.query(
    "INSERT INTO words (id, word, definition, created_at) VALUES ($1, $2, $3, now())",
    [uuidv7(), req.body.word, req.body.definition],
  );
  res.sendStatus(204);
});

const server = app.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  console.log(`Listening on http://127.0.0.1:${server.address().port}/`);
});
