// AI SDK: generateText (streamText with AURA_STREAM=1) with a zod tool, get_weather, executed
// locally, for up to three steps (stopWhen: stepCountIs(3)). Prints {"steps", "toolCalls":
// [{toolName, input}], "toolResults": [{toolName, output}], "text", "finishReason"}.
import { generateText, stepCountIs, streamText, tool } from "ai";
import { z } from "zod";
import { aiModel, drain } from "./ai_provider.mjs";
import { getWeather, run } from "./lib.mjs";

const tools = {
  get_weather: tool({
    description: "The current weather in a city",
    inputSchema: z.object({ city: z.string().describe("The city's name") }),
    execute: async (input) => getWeather(input),
  }),
};

run(async (cfg) => {
  const options = {
    model: aiModel(cfg),
    prompt: cfg.prompt,
    tools,
    stopWhen: stepCountIs(3),
    maxRetries: 0,
  };
  let steps;
  let text;
  let finishReason;
  if (cfg.stream) {
    const result = streamText({ ...options, onError: () => {} }); // drain() throws it
    await drain(result);
    [steps, text, finishReason] = await Promise.all([
      result.steps,
      result.text,
      result.finishReason,
    ]);
  } else {
    ({ steps, text, finishReason } = await generateText(options));
  }
  return {
    steps: steps.length,
    toolCalls: steps.flatMap((s) =>
      s.toolCalls.map(({ toolName, input }) => ({ toolName, input })),
    ),
    toolResults: steps.flatMap((s) =>
      s.toolResults.map(({ toolName, output }) => ({ toolName, output })),
    ),
    text,
    finishReason,
  };
});
