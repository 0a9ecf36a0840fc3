// openai SDK tool loop: `client.chat.completions.runTools` (openai v5+; `beta.` before) offers
// get_weather, runs the calls the model asks for locally, sends the results back and returns the
// final answer. AURA_STREAM=1 streams every round. Prints {"tool_calls": [{name, arguments}],
// "final_text", "rounds", "finish_reason"}.
import OpenAI from "openai";
import { getWeather, run, WEATHER_PARAMETERS } from "./lib.mjs";

run(async ({ baseURL, apiKey, model, prompt, stream }) => {
  const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 30_000 });
  const toolCalls = [];
  const runner = client.chat.completions.runTools({
    model,
    messages: [{ role: "user", content: prompt }],
    stream,
    tools: [
      {
        type: "function",
        function: {
          name: "get_weather",
          description: "The current weather in a city",
          parameters: WEATHER_PARAMETERS,
          parse: JSON.parse,
          function: getWeather,
        },
      },
    ],
  }, { maxChatCompletions: 5 }); // a runner option: in the body it would be sent upstream
  runner.on("functionToolCall", ({ name, arguments: args }) => {
    toolCalls.push({ name, arguments: JSON.parse(args) });
  });
  const finalText = await runner.finalContent();
  const completions = runner.allChatCompletions();
  return {
    tool_calls: toolCalls,
    final_text: finalText,
    rounds: completions.length,
    finish_reason: completions.at(-1)?.choices[0]?.finish_reason ?? null,
  };
});
