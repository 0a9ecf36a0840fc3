// AI SDK: streamText from a model whose stream carries `delta.reasoning_content` (or
// `delta.reasoning`): the reasoning-delta parts and the final text. Prints {"reasoning" (from
// the stream parts), "reasoningText" (the result's), "text", "finishReason", "parts"}.
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
  return {
    reasoning: seen.reasoning,
    reasoningText: (await result.reasoningText) ?? null,
    text: await result.text,
    finishReason: await result.finishReason,
    parts: seen.types,
  };
});
