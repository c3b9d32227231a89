// The Parquet tests' outside judges: DuckDB (@duckdb/node-api), Apache Arrow's JS reader
// and Polars (nodejs-polars), installed by scripts/deps into $VDB_NODE_DIR. Prints one
// JSON line per answer.
//   node judge.cjs sql STATEMENT...     each statement's rows as JSON objects
//   node judge.cjs arrow-schema FILE    the fields of FILE's ARROW:schema footer entry
//   node judge.cjs polars-version       whether Polars loads here
//   node judge.cjs polars-read FILE     {dtypes, rows} as Polars reads FILE
//   node judge.cjs polars-write DIR     writes DIR/NAME.parquet for each variant below and
//                                       prints {names, rows}: the rows every file holds
'use strict';
const path = require('path');
const dir = process.env.VDB_NODE_DIR;
const duckdb = require(path.join(dir, 'node_modules', '@duckdb', 'node-api'));

function polars() {
  return require(path.join(dir, 'node_modules', 'nodejs-polars'));
}

// Rows with ids, a vector, a string with nulls, a float with nulls and a list of strings.
function polarsRows(n) {
  const rows = [];
  for (let i = 0; i < n; i++) {
    rows.push({id: i * 3 + 1, vector: [i * 0.5, (i % 7) - 3.25, 1 / (i + 1), -i],
               name: i % 3 ? 'n' + (i % 5) : null, score: i % 4 ? i / 8 : null,
               tags: ['x', 'y', 'z'].slice(0, i % 4)});
  }
  return rows;
}

async function main() {
  const [cmd, ...args] = process.argv.slice(2);
  if (cmd === 'polars-version') {
    console.log(JSON.stringify(polars().version || 'loaded'));
    return;
  }
  if (cmd === 'polars-read') {
    const pl = polars();
    const df = pl.readParquet(args[0]);
    console.log(JSON.stringify({dtypes: df.dtypes.map(String), columns: df.columns,
                                rows: df.toRecords()},
                               (k, v) => typeof v === 'bigint' ? v.toString() : v));
    return;
  }
  if (cmd === 'polars-write') {
    const pl = polars();
    const rows = polarsRows(1000);
    const base = pl.DataFrame({
      id: pl.Series('id', rows.map((r) => r.id), pl.Int64),
      name: pl.Series('name', rows.map((r) => r.name), pl.Utf8),
      score: pl.Series('score', rows.map((r) => r.score), pl.Float64),
      tags: pl.Series('tags', rows.map((r) => r.tags), pl.List(pl.Utf8)),
    });
    const list = pl.Series('vector', rows.map((r) => r.vector), pl.List(pl.Float32));
    const fixed = list.cast(pl.FixedSizeList(pl.Float32, 4));
    const dbl = pl.Series('vector', rows.map((r) => r.vector), pl.List(pl.Float64));
    const names = [];
    const out = (name, df, opts) => {
      df.writeParquet(path.join(args[0], name + '.parquet'), opts);
      names.push(name);
    };
    out('list-zstd', base.withColumn(list), {compression: 'zstd'});
    out('fixed-snappy', base.withColumn(fixed), {compression: 'snappy'});
    out('fixed-lz4', base.withColumn(fixed), {compression: 'lz4'});
    out('double-gzip', base.withColumn(dbl), {compression: 'gzip'});
    out('list-none', base.withColumn(list), {compression: 'uncompressed'});
    out('stringid', base.withColumn(list).withColumn(
      pl.Series('id', rows.map((r) => 'doc-' + r.id), pl.Utf8)), {compression: 'zstd'});
    console.log(JSON.stringify({names, rows}));
    return;
  }
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
