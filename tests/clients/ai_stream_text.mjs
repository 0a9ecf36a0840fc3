// AI SDK: streamText with plain text. Prints {"text", "finishReason", "usage", "parts"}.
import { streamText } from "ai";
import { aiModel, drain } from "./ai_provider.mjs";
import { run } from "./lib.mjs";

run(async (cfg) => {
  const result = streamText({
    model: aiModel(cfg),
    prompt: cfg.prompt,
    maxRetries: 0,
    onError: () => {}, // drain() throws the error part instead of this logging it
  });
  const seen = await drain(result);
  const text = await result.text;
  if (text !== seen.text) throw new Error(`text ${JSON.stringify(text)} != streamed deltas`);
  const usage = await result.usage;
  return {
    text,
    finishReason: await result.finishReason,
    usage: { inputTokens: usage.inputTokens ?? null, outputTokens: usage.outputTokens ?? null },
    parts: seen.types,
  };
});
