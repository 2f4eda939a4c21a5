// Validates KEDA objects with @kubernetes-models/keda's own validators
// (generated from KEDA's CRD schemas: types, enums, required fields).
// Those let unknown fields through, so check.py also type-checks the same
// objects with TypeScript, whose excess-property check refuses them.
// Input: a JSON file [{id, object}]; output: {id: [error, ...]} on stdout.
// check.py copies this file next to the node_modules it imports from.
import { readFileSync } from "node:fs";
import * as keda from "@kubernetes-models/keda/keda.sh/v1alpha1";

const results = {};
for (const { id, object } of JSON.parse(readFileSync(process.argv[2], "utf8"))) {
  const Model = object.apiVersion === "keda.sh/v1alpha1" ? keda[object.kind] : undefined;
  if (typeof Model !== "function") {
    results[id] = [`no KEDA schema for ${object.apiVersion} ${object.kind}`];
    continue;
  }
  try {
    new Model(object).validate();
    results[id] = [];
  } catch (e) {
    results[id] = [String(e && e.message ? e.message : e)];
  }
}
process.stdout.write(JSON.stringify(results));
