// The Parquet tests' outside judges: DuckDB (@duckdb/node-api) and Apache Arrow's JS
// reader, installed by scripts/deps into $VDB_NODE_DIR. Prints one JSON line per answer.
//   node judge.cjs sql STATEMENT...     each statement's rows as JSON objects
//   node judge.cjs arrow-schema FILE    the fields of FILE's ARROW:schema footer entry
'use strict';
const path = require('path');
const dir = process.env.VDB_NODE_DIR;
const duckdb = require(path.join(dir, 'node_modules', '@duckdb', 'node-api'));

async function main() {
  const [cmd, ...args] = process.argv.slice(2);
  const inst = await duckdb.DuckDBInstance.create(':memory:');
  const c = await inst.connect();
  if (cmd === 'sql') {
    for (const q of args) {
      const r = await c.runAndReadAll(q);
      console.log(JSON.stringify(r.getRowObjectsJson()));
    }
  } else if (cmd === 'arrow-schema') {
    const arrow = require(path.join(dir, 'node_modules', 'apache-arrow'));
    const file = args[0].replace(/'/g, "''");
    const r = await c.runAndReadAll(
      `SELECT decode(key) AS k, value FROM parquet_kv_metadata('${file}')`);
    const fields = [];
    for (const row of r.getRowObjects()) {
      if (row.k !== 'ARROW:schema') continue;
      const bytes = Buffer.from(Buffer.from(row.value.bytes).toString(), 'base64');
      const reader = arrow.RecordBatchReader.from(bytes);
      reader.open();
      const describe = (f) => ({name: f.name, type: String(f.type), nullable: f.nullable,
                                children: (f.type.children || []).map(describe)});
      for (const f of reader.schema.fields) fields.push(describe(f));
    }
    console.log(JSON.stringify(fields));
  } else {
    throw new Error('unknown command ' + cmd);
  }
}
main().catch((e) => { console.error(String(e)); process.exit(1); });
