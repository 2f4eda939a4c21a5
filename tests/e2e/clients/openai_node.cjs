// OpenAI's Node.js SDK against voxq's OpenAI-compatible routes. Prints
// one JSON object of what each call returned or raised; the Rust test
// (tests/e2e/openai.rs) judges it. Settings: OPENAI_MODULE (the SDK's
// directory), BASE, KEY, WRONG_KEY, QUOTA_KEY, AUDIO.
const fs = require("node:fs");
const sdk = require(process.env.OPENAI_MODULE);
const OpenAI = sdk.OpenAI || sdk.default || sdk;

const env = process.env;
// No retries: each call is one request, and a failure shows as itself.
const client = new OpenAI({ baseURL: env.BASE, apiKey: env.KEY, maxRetries: 0 });
const transcribe = (api, extra) =>
  api.audio.transcriptions.create({
    model: "whisper-1",
    file: fs.createReadStream(env.AUDIO),
    ...extra,
  });

async function raised(call) {
  try {
    await call();
    return { class: null };
  } catch (e) {
    return { class: e.constructor.name, status: e.status, body: e.error };
  }
}

(async () => {
  const out = {};
  out.json = (await transcribe(client, {})).text;
  out.text = await transcribe(client, { response_format: "text" });
  out.srt = await transcribe(client, { response_format: "srt" });
  out.vtt = await transcribe(client, { response_format: "vtt" });
  out.verbose = await transcribe(client, {
    response_format: "verbose_json",
    timestamp_granularities: ["word", "segment"],
  });
  out.translation = (
    await client.audio.translations.create({
      model: "whisper-1",
      file: fs.createReadStream(env.AUDIO),
    })
  ).text;
  out.models = [];
  for await (const m of client.models.list()) out.models.push(m.id);
  const wrong = new OpenAI({ baseURL: env.BASE, apiKey: env.WRONG_KEY, maxRetries: 0 });
  out.wrong_key = await raised(() => transcribe(wrong, {}));
  const spent = new OpenAI({ baseURL: env.BASE, apiKey: env.QUOTA_KEY, maxRetries: 0 });
  out.quota = await raised(() => transcribe(spent, {}));
  out.bad_format = await raised(() => transcribe(client, { response_format: "docx" }));
  out.bad_model = await raised(() => transcribe(client, { model: "no-such-model" }));
  console.log(JSON.stringify(out));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
