// openai SDK: one streamed chat completion. Prints {"text", "finish_reason", "model", "chunks"}.
import OpenAI from "openai";
import { run } from "./lib.mjs";

run(async ({ baseURL, apiKey, model, prompt }) => {
  const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 30_000 });
  const stream = await client.chat.completions.create({
    model,
    messages: [{ role: "user", content: prompt }],
    stream: true,
  });
  let text = "";
  let finishReason = null;
  let chunks = 0;
  const models = new Set();
  for await (const chunk of stream) {
    chunks += 1;
    models.add(chunk.model);
    for (const choice of chunk.choices) {
      text += choice.delta?.content ?? "";
      finishReason = choice.finish_reason ?? finishReason;
    }
  }
  return { text, finish_reason: finishReason, model: [...models].join(","), chunks };
});
