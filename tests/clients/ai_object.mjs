// AI SDK: generateObject with a zod schema (sent as response_format json_schema). Prints
// {"object", "finishReason"}. (ai 6 marks generateObject deprecated in favour of generateText
// with `output: Output.object(...)`; both send the same request.)
import { generateObject } from "ai";
import { z } from "zod";
import { aiModel } from "./ai_provider.mjs";
import { run } from "./lib.mjs";

const Weather = z.object({
  city: z.string(),
  temperature_c: z.number(),
  conditions: z.enum(["sunny", "cloudy", "rainy"]),
});

run(async (cfg) => {
  const { object, finishReason } = await generateObject({
    model: aiModel(cfg),
    schema: Weather,
    schemaName: "weather",
    prompt: cfg.prompt,
    maxRetries: 0,
  });
  return { object, finishReason };
});
