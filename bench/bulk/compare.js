// Run deep-email-validator (npm) over a CSV `email,...` with CONCURRENCY checks at once,
// as a user of the library would (Promise pool); write `email,verdict,reason` to OUT.
// Usage: NODE_PATH=DIR/node_modules node compare.js IN.csv OUT.csv [CONCURRENCY]
const fs = require("fs");
const { validate } = require("deep-email-validator");
const [inp, out, conc = "20"] = process.argv.slice(2);
const emails = fs.readFileSync(inp, "utf8").split("\n").slice(1).filter(Boolean)
  .map((l) => l.split(",")[0]);
const res = new Array(emails.length);
let next = 0;
async function worker() {
  while (next < emails.length) {
    const i = next++;
    try {
      const r = await validate({ email: emails[i], sender: "bench@probe.bench",
        validateRegex: true, validateMx: true, validateTypo: false,
        validateDisposable: false, validateSMTP: true });
      res[i] = [emails[i], r.valid ? "deliverable" : (r.reason === "smtp" &&
        /not found/.test(r.validators.smtp.reason || "") ? "undeliverable" : "unknown"),
        (r.reason || "") + ":" + ((r.validators[r.reason] || {}).reason || "")];
    } catch (e) {
      res[i] = [emails[i], "unknown", "exception:" + e];
    }
  }
}
const t0 = Date.now();
Promise.all(Array.from({ length: +conc }, worker)).then(() => {
  fs.writeFileSync(out, "email,verdict,reason\n" +
    res.map((r) => r.map((x) => '"' + String(x).replace(/"/g, '""') + '"').join(",")).join("\n") + "\n");
  const s = (Date.now() - t0) / 1000;
  console.error(`deep-email-validator: ${emails.length} addresses in ${s} s, ${(emails.length / s).toFixed(1)} addresses/s`);
});
