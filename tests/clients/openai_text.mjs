// openai SDK: one chat completion, not streamed. Prints {"text", "finish_reason", "model",
// "usage"}.
import OpenAI from "openai";
import { run } from "./lib.mjs";

run(async ({ baseURL, apiKey, model, prompt }) => {
  const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 30_000 });
  const completion = await client.chat.completions.create({
    model,
    messages: [{ role: "user", content: prompt }],
  });
  const [choice] = completion.choices;
  return {
    text: choice.message.content,
    finish_reason: choice.finish_reason,
    model: completion.model,
    usage: completion.usage ?? null,
  };
});
